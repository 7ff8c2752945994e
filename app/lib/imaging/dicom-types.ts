/**
 * The shapes the DICOM pixel pipeline (./dicom.ts) returns and takes: the decoded frame with its display choices
 * (PS3.3 C.11), public and identifying metadata kept apart, and the decode options.
 */
import type { Lut } from './lut';
import type { DecodedFrame, WasmBinaryLoader } from './codecs/types';

export type Photometric = 'MONOCHROME1' | 'MONOCHROME2' | 'RGB' | 'YBR_FULL' | 'YBR_FULL_422' | 'PALETTE COLOR' | 'YBR_RCT' | 'YBR_ICT';
export type VoiFunction = 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID';

/** Attributes safe to show by default. */
export interface DicomPublicMetadata {
  TransferSyntaxUID: string;
  TransferSyntaxName: string;
  SOPClassUID?: string;
  Modality?: string;
  BodyPartExamined?: string;
  ViewPosition?: string;
  StudyDescription?: string;
  SeriesDescription?: string;
  Manufacturer?: string;
  ManufacturerModelName?: string;
  Rows: number;
  Columns: number;
  SamplesPerPixel: number;
  PhotometricInterpretation: string;
  BitsAllocated: number;
  BitsStored: number;
  HighBit: number;
  PixelRepresentation: number;
  NumberOfFrames: number;
  PixelSpacing?: [number, number];
  ImagerPixelSpacing?: [number, number];
  RescaleSlope: number;
  RescaleIntercept: number;
  RescaleType?: string;
  WindowCenter?: number;
  WindowWidth?: number;
  VOILUTFunction?: string;
  PresentationLUTShape?: string;
  PlanarConfiguration?: number;
}

/** Attributes that identify a patient, a study or a place; hidden in the UI unless the user asks. */
export interface DicomIdentifyingMetadata {
  PatientName?: string;
  PatientID?: string;
  OtherPatientIDs?: string;
  PatientBirthDate?: string;
  PatientSex?: string;
  PatientAge?: string;
  AccessionNumber?: string;
  StudyID?: string;
  StudyDate?: string;
  StudyTime?: string;
  SeriesDate?: string;
  AcquisitionDate?: string;
  ContentDate?: string;
  InstitutionName?: string;
  InstitutionAddress?: string;
  StationName?: string;
  DeviceSerialNumber?: string;
  ReferringPhysicianName?: string;
  PerformingPhysicianName?: string;
  OperatorsName?: string;
  StudyInstanceUID?: string;
  SeriesInstanceUID?: string;
  SOPInstanceUID?: string;
}

export interface DicomWindow {
  center: number;
  width: number;
}

/**
 * One way to turn modality values into display values (PS3.3 C.11.2): a window (with its VOI LUT Function) or a
 * VOI LUT Sequence item. The viewer offers them all; `DicomImage.defaultPresetId` is what the model sees.
 */
export type VoiPreset =
  | { id: string; kind: 'window'; label: string; center: number; width: number; fn: VoiFunction; source: 'file' | 'auto' }
  | { id: string; kind: 'lut'; label: string; lut: Lut; source: 'file' };

export interface DicomImage {
  width: number;
  height: number;
  /** Number of frames in the file and the 0-based frame these pixels are from. */
  frames: number;
  frameIndex: number;
  /**
   * Greyscale: modality values (after the Modality LUT Sequence or Rescale Slope/Intercept), one per pixel,
   * row-major. Colour: ITU-R 601 luma of `rgb` (0..255).
   */
  pixels: Float32Array;
  /** Interleaved 8-bit RGB for colour images (RGB, YBR_* converted, PALETTE COLOR looked up). */
  rgb?: Uint8Array;
  /** PALETTE COLOR only: the palette's full-precision RGB (as pydicom's apply_color_lut), interleaved. */
  paletteRgb16?: Uint16Array;
  /** Linear window of the default preset, or of the file's first window; the viewer's drag starts from it. */
  window: DicomWindow;
  windowSource: 'file' | 'auto';
  /** Display choices, file's first; see VoiPreset. */
  presets: VoiPreset[];
  defaultPresetId: string;
  photometric: Photometric;
  /** VOI LUT Function of the file's windows: 'LINEAR' (default), 'LINEAR_EXACT' or 'SIGMOID'. */
  voiLutFunction: VoiFunction;
  /** Display inverted: MONOCHROME1, or Presentation LUT Shape INVERSE (PS3.3 C.11.6). */
  invert: boolean;
  /** Minimum and maximum of `pixels`, padding (Pixel Padding Value) left out. */
  range: { min: number; max: number };
  /** How stored values became modality values, e.g. "Rescale 1·x+0" or "Modality LUT Sequence (4096 entries)". */
  modalityTransform: string;
  /** Which codec package decoded the frame (absent for native pixel data). */
  codec?: string;
  metadata: DicomPublicMetadata;
  identifying: DicomIdentifyingMetadata;
  /** Things the user should know, e.g. "Frame 1 of 12". */
  notes: string[];
}

export interface DecodeDicomOptions {
  /** Refuse images with more pixels than this (rows × columns); default 100 MP. */
  maxPixels?: number;
  /** 0-based frame to decode (default 0). */
  frame?: number;
  /** The frame, already decoded by a codec (decodeDicomAsync does this). */
  decodedFrame?: DecodedFrame;
}

export interface DecodeDicomAsyncOptions extends Omit<DecodeDicomOptions, 'decodedFrame'> {
  /** Supplies codec wasm binaries (platform code: fetch in the browser, node_modules in Node). */
  loadWasm: WasmBinaryLoader;
}
