/**
 * Which transfer syntaxes need a codec package, whether they are lossless, and which are refused and why. No codec
 * is imported here, so the main thread can know the table without bundling the codecs (see ./index for the picks).
 */

/** Compressed syntaxes decoded through ./index (lossless ones must equal pydicom exactly). */
export const CODEC_SYNTAXES: Record<string, { lossless: boolean }> = {
  '1.2.840.10008.1.2.4.50': { lossless: false },
  '1.2.840.10008.1.2.4.51': { lossless: false },
  '1.2.840.10008.1.2.4.57': { lossless: true },
  '1.2.840.10008.1.2.4.70': { lossless: true },
  '1.2.840.10008.1.2.4.80': { lossless: true },
  '1.2.840.10008.1.2.4.81': { lossless: false },
  '1.2.840.10008.1.2.4.90': { lossless: true },
  '1.2.840.10008.1.2.4.91': { lossless: false },
  '1.2.840.10008.1.2.4.201': { lossless: true },
  '1.2.840.10008.1.2.4.202': { lossless: true },
  '1.2.840.10008.1.2.4.203': { lossless: false },
};

/** Known syntaxes that are refused, and why (the message names the syntax and this reason). */
export const REFUSED_SYNTAXES: Record<string, string> = {
  '1.2.840.10008.1.2.4.92': 'JPEG 2000 Part 2 multi-component transforms are not decoded here',
  '1.2.840.10008.1.2.4.93': 'JPEG 2000 Part 2 multi-component transforms are not decoded here',
  '1.2.840.10008.1.2.4.94': 'JPIP references point to a server; this app never fetches images from one',
  '1.2.840.10008.1.2.4.95': 'JPIP references point to a server; this app never fetches images from one',
  '1.2.840.10008.1.2.4.100': 'MPEG-2 video is not an X-ray still image format handled here',
  '1.2.840.10008.1.2.4.101': 'MPEG-2 video is not an X-ray still image format handled here',
  '1.2.840.10008.1.2.4.102': 'H.264 video is not handled here',
  '1.2.840.10008.1.2.4.103': 'H.264 video is not handled here',
  '1.2.840.10008.1.2.4.104': 'H.264 video is not handled here',
  '1.2.840.10008.1.2.4.105': 'H.264 video is not handled here',
  '1.2.840.10008.1.2.4.106': 'H.264 video is not handled here',
  '1.2.840.10008.1.2.4.107': 'HEVC video is not handled here',
  '1.2.840.10008.1.2.4.108': 'HEVC video is not handled here',
  '1.2.840.10008.1.2.4.110': 'JPEG XL has no decoder verified against a reference here',
  '1.2.840.10008.1.2.4.111': 'JPEG XL has no decoder verified against a reference here',
  '1.2.840.10008.1.2.4.112': 'JPEG XL has no decoder verified against a reference here',
};
