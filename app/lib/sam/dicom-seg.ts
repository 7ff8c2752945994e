/**
 * DICOM Segmentation (SEG) objects for masks drawn on a DICOM image, written with dcmjs.
 *
 * PS3.3 A.51 Segmentation IOD (SOP Class 1.2.840.10008.5.1.4.1.1.66.4): BINARY segmentation, one frame per segment
 * (Segment Identification per frame), 1-bit pixels packed LSB first with frames contiguous in bits (PS3.5 8.1.1,
 * PS3.3 C.8.20.2), Derivation Image / Source Image Sequence and the Common Instance Reference module pointing to
 * the source image's SOP Instance, Referenced Series and Frame of Reference. Explicit VR Little Endian.
 *
 * Privacy: the source's Study/Series/SOP Instance UIDs and Frame of Reference UID are copied (a SEG that does not
 * reference its image is useless); patient and study identifiers (name, ID, birth date, sex, accession, dates) are
 * written empty unless `includeIdentifying` is set.
 */
import dcmjs from 'dcmjs';

export interface SegSegment {
  label: string;
  /** 0/1 per pixel, rows × columns of the source image, row-major. */
  mask: Uint8Array;
  /** Display colour (RGB 0..255), written as RecommendedDisplayCIELabValue is skipped; kept for the caller. */
  color?: [number, number, number];
}

export interface SegOptions {
  includeIdentifying?: boolean;
  /** Which model produced the masks (SegmentAlgorithmName). */
  algorithmName: string;
  seriesDescription?: string;
  /** Fixed UIDs and date (tests); generated otherwise. */
  uids?: { series: string; instance: string };
  contentDate?: string;
  contentTime?: string;
}

const SEG_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.66.4';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';

function code(value: string, scheme: string, meaning: string) {
  return { CodeValue: value, CodingSchemeDesignator: scheme, CodeMeaning: meaning };
}

/** SNOMED CT property for a segment label: lungs by side when the label says so, else generic tissue. */
export function segmentedProperty(label: string): { category: ReturnType<typeof code>; type: ReturnType<typeof code> } {
  const l = label.toLowerCase();
  const anatomical = code('91723000', 'SCT', 'Anatomical Structure');
  if (l.includes('lung')) {
    if (l.includes('right')) return { category: anatomical, type: code('3341006', 'SCT', 'Right lung') };
    if (l.includes('left')) return { category: anatomical, type: code('44029006', 'SCT', 'Left lung') };
    return { category: anatomical, type: code('39607008', 'SCT', 'Lung') };
  }
  return { category: code('85756007', 'SCT', 'Tissue'), type: code('85756007', 'SCT', 'Tissue') };
}

/** Pack frames of 0/1 pixels into one bit stream, LSB first, frames contiguous; padded to an even byte length. */
export function packBits(frames: Uint8Array[]): Uint8Array {
  const total = frames.reduce((a, f) => a + f.length, 0);
  const out = new Uint8Array(Math.ceil(Math.ceil(total / 8) / 2) * 2);
  let bit = 0;
  for (const f of frames) {
    for (let i = 0; i < f.length; i++, bit++) if (f[i]) out[bit >> 3] |= 1 << (bit & 7);
  }
  return out;
}

/** The attributes of the source image a SEG copies or references (DICOM keywords). */
export interface SegSourceAttributes {
  Rows: number;
  Columns: number;
  SOPClassUID?: string;
  SOPInstanceUID?: string;
  StudyInstanceUID?: string;
  SeriesInstanceUID?: string;
  FrameOfReferenceUID?: string;
  PixelSpacing?: number[];
  ImagerPixelSpacing?: number[];
  PatientName?: string;
  PatientID?: string;
  PatientBirthDate?: string;
  PatientSex?: string;
  StudyDate?: string;
  StudyTime?: string;
  StudyID?: string;
  AccessionNumber?: string;
}

/** Source attributes read from Part 10 bytes with dcmjs (pixel data not read). */
export function segSourceFromBytes(source: ArrayBuffer): SegSourceAttributes {
  const { data } = dcmjs;
  return data.DicomMetaDictionary.naturalizeDataset(data.DicomMessage.readFile(source, { untilTag: '7FE00010', includeUntilTagValue: false }).dict) as unknown as SegSourceAttributes;
}

/**
 * Build the SEG file for `segments` drawn on a DICOM image: `source` is its Part 10 bytes or its attributes.
 * Throws when the source has no SOP Instance UID or the masks do not match its Rows × Columns.
 */
export function buildDicomSeg(source: ArrayBuffer | SegSourceAttributes, segments: SegSegment[], opts: SegOptions): Uint8Array {
  if (!segments.length) throw new Error('no mask to export');
  const { data } = dcmjs;
  const src = (source instanceof ArrayBuffer ? segSourceFromBytes(source) : source) as unknown as Record<string, unknown>;
  const rows = Number(src.Rows);
  const cols = Number(src.Columns);
  const sopInstance = String(src.SOPInstanceUID ?? '');
  if (!sopInstance) throw new Error('the source DICOM has no SOP Instance UID: a SEG cannot reference it');
  for (const s of segments) {
    if (s.mask.length !== rows * cols) throw new Error(`mask “${s.label}” has ${s.mask.length} pixels; the image is ${cols}×${rows}`);
  }
  const uid = () => data.DicomMetaDictionary.uid();
  const seriesUID = opts.uids?.series ?? uid();
  const instanceUID = opts.uids?.instance ?? uid();
  const date = opts.contentDate ?? data.DicomMetaDictionary.date();
  const time = opts.contentTime ?? data.DicomMetaDictionary.time();
  const ident = (k: string) => (opts.includeIdentifying && src[k] !== undefined ? src[k] : '');
  const frameOfRef = (src.FrameOfReferenceUID as string | undefined) ?? uid();
  const sourceRef = {
    ReferencedSOPClassUID: src.SOPClassUID,
    ReferencedSOPInstanceUID: sopInstance,
  };
  const spacing = (src.PixelSpacing ?? src.ImagerPixelSpacing) as number[] | number | undefined;
  const pixelMeasures = spacing !== undefined ? [{ PixelSpacing: Array.isArray(spacing) ? spacing : [spacing, spacing], SliceThickness: 1 }] : undefined;

  const ds: Record<string, unknown> = {
    _vrMap: { PixelData: 'OB' },
    SOPClassUID: SEG_SOP_CLASS,
    SOPInstanceUID: instanceUID,
    SpecificCharacterSet: 'ISO_IR 192',
    // Patient / General Study (type 2: present, empty unless the user asks for identifiers)
    PatientName: ident('PatientName'),
    PatientID: ident('PatientID'),
    PatientBirthDate: ident('PatientBirthDate'),
    PatientSex: ident('PatientSex'),
    StudyInstanceUID: src.StudyInstanceUID ?? uid(),
    StudyDate: ident('StudyDate'),
    StudyTime: ident('StudyTime'),
    ReferringPhysicianName: '',
    StudyID: ident('StudyID'),
    AccessionNumber: ident('AccessionNumber'),
    // General Series / Segmentation Series
    Modality: 'SEG',
    SeriesInstanceUID: seriesUID,
    SeriesNumber: 300,
    SeriesDescription: opts.seriesDescription ?? 'CXR Studio segmentation',
    // Frame of Reference
    FrameOfReferenceUID: frameOfRef,
    PositionReferenceIndicator: '',
    // General / Enhanced General Equipment
    Manufacturer: 'cxr-studio',
    ManufacturerModelName: 'cxr-studio segment view',
    DeviceSerialNumber: '0',
    SoftwareVersions: '0.1.0',
    // General Image / Segmentation Image
    InstanceNumber: 1,
    ContentDate: date,
    ContentTime: time,
    ImageType: ['DERIVED', 'PRIMARY'],
    ContentLabel: 'SEGMENTATION',
    ContentDescription: `masks from ${opts.algorithmName}`.slice(0, 64),
    ContentCreatorName: '',
    SegmentationType: 'BINARY',
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    Rows: rows,
    Columns: cols,
    BitsAllocated: 1,
    BitsStored: 1,
    HighBit: 0,
    PixelRepresentation: 0,
    LossyImageCompression: '00',
    NumberOfFrames: segments.length,
    SegmentSequence: segments.map((s, i) => {
      const p = segmentedProperty(s.label);
      return {
        SegmentNumber: i + 1,
        SegmentLabel: s.label.slice(0, 64),
        SegmentAlgorithmType: 'SEMIAUTOMATIC',
        SegmentAlgorithmName: opts.algorithmName.slice(0, 64),
        SegmentedPropertyCategoryCodeSequence: [p.category],
        SegmentedPropertyTypeCodeSequence: [p.type],
      };
    }),
    DimensionOrganizationSequence: [{ DimensionOrganizationUID: uid() }],
    DimensionOrganizationType: '2D',
    SharedFunctionalGroupsSequence: [
      {
        ...(pixelMeasures ? { PixelMeasuresSequence: pixelMeasures } : {}),
        DerivationImageSequence: [
          {
            DerivationCodeSequence: [code('113076', 'DCM', 'Segmentation')],
            SourceImageSequence: [{ ...sourceRef, PurposeOfReferenceCodeSequence: [code('121322', 'DCM', 'Source image for image processing operation')] }],
          },
        ],
      },
    ],
    PerFrameFunctionalGroupsSequence: segments.map((_, i) => ({
      FrameContentSequence: [{ DimensionIndexValues: [i + 1] }],
      SegmentIdentificationSequence: [{ ReferencedSegmentNumber: i + 1 }],
    })),
    ReferencedSeriesSequence: [{ SeriesInstanceUID: src.SeriesInstanceUID ?? '', ReferencedInstanceSequence: [sourceRef] }],
    PixelData: [packBits(segments.map((s) => s.mask)).buffer],
  };
  ds.DimensionIndexSequence = [
    {
      DimensionOrganizationUID: (ds.DimensionOrganizationSequence as { DimensionOrganizationUID: string }[])[0].DimensionOrganizationUID,
      DimensionIndexPointer: 0x0062000b,
      FunctionalGroupPointer: 0x0062000a,
      DimensionDescriptionLabel: 'ReferencedSegmentNumber',
    },
  ];
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: SEG_SOP_CLASS,
    MediaStorageSOPInstanceUID: instanceUID,
    TransferSyntaxUID: EXPLICIT_LE,
    ImplementationClassUID: '2.25.80302813137786398554742050926734630921',
    ImplementationVersionName: 'cxr-studio-0.1',
  };
  const dict = new data.DicomDict(data.DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = data.DicomMetaDictionary.denaturalizeDataset(ds);
  return new Uint8Array(dict.write());
}
