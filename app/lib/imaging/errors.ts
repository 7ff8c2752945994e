/**
 * Typed image-decoding errors. Every failure to turn user bytes into pixels is an ImageDecodeError with a stable
 * `code` (for logic and tests) and a human `message` (for the UI).
 */

export type ImageDecodeErrorCode =
  | 'empty'
  | 'not-an-image'
  | 'truncated'
  | 'too-large'
  | 'corrupt'
  | 'unsupported-transfer-syntax'
  | 'unsupported-dicom'
  | 'no-pixel-data';

const DEFAULT_MESSAGES: Record<ImageDecodeErrorCode, string> = {
  empty: 'The file is empty',
  'not-an-image': 'This file is not a PNG, JPEG or DICOM image',
  truncated: 'The image file is truncated',
  'too-large': 'The image is too large to open on this device',
  corrupt: 'The image file is damaged and cannot be decoded',
  'unsupported-transfer-syntax': 'This DICOM file uses a compression (transfer syntax) that is not supported',
  'unsupported-dicom': 'This DICOM file uses features that are not supported',
  'no-pixel-data': 'This DICOM file has no image (no Pixel Data element)',
};

export class ImageDecodeError extends Error {
  readonly code: ImageDecodeErrorCode;
  /** Extra machine-readable facts, e.g. { transferSyntaxUID, transferSyntaxName } or { width, height }. */
  readonly details?: Record<string, unknown>;

  constructor(code: ImageDecodeErrorCode, message?: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message ?? DEFAULT_MESSAGES[code], options);
    this.name = 'ImageDecodeError';
    this.code = code;
    this.details = details;
  }
}

export function isImageDecodeError(e: unknown): e is ImageDecodeError {
  return e instanceof ImageDecodeError || (typeof e === 'object' && e !== null && (e as { name?: unknown }).name === 'ImageDecodeError');
}

export { DEFAULT_MESSAGES as IMAGE_DECODE_MESSAGES };
