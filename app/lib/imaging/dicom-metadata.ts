/**
 * The metadata a decoded DICOM carries, kept in two sets: attributes safe to show (the image description and a few
 * descriptive strings) and those that identify a patient, a study or a place (hidden unless the user asks).
 */
import type { DataSet } from 'dicom-parser';
import { ds2, num, str } from './dicom-parse';
import type { Prepared } from './dicom-prepare';
import type { DicomIdentifyingMetadata, DicomPublicMetadata } from './dicom-types';

const PUBLIC_STRING_TAGS: [keyof DicomPublicMetadata, string][] = [
  ['SOPClassUID', 'x00080016'],
  ['Modality', 'x00080060'],
  ['BodyPartExamined', 'x00180015'],
  ['ViewPosition', 'x00185101'],
  ['StudyDescription', 'x00081030'],
  ['SeriesDescription', 'x0008103e'],
  ['Manufacturer', 'x00080070'],
  ['ManufacturerModelName', 'x00081090'],
  ['RescaleType', 'x00281054'],
];

const IDENTIFYING_TAGS: [keyof DicomIdentifyingMetadata, string][] = [
  ['PatientName', 'x00100010'],
  ['PatientID', 'x00100020'],
  ['OtherPatientIDs', 'x00101000'],
  ['PatientBirthDate', 'x00100030'],
  ['PatientSex', 'x00100040'],
  ['PatientAge', 'x00101010'],
  ['AccessionNumber', 'x00080050'],
  ['StudyID', 'x00200010'],
  ['StudyDate', 'x00080020'],
  ['StudyTime', 'x00080030'],
  ['SeriesDate', 'x00080021'],
  ['AcquisitionDate', 'x00080022'],
  ['ContentDate', 'x00080023'],
  ['InstitutionName', 'x00080080'],
  ['InstitutionAddress', 'x00080081'],
  ['StationName', 'x00081010'],
  ['DeviceSerialNumber', 'x00181000'],
  ['ReferringPhysicianName', 'x00080090'],
  ['PerformingPhysicianName', 'x00081050'],
  ['OperatorsName', 'x00081070'],
  ['StudyInstanceUID', 'x0020000d'],
  ['SeriesInstanceUID', 'x0020000e'],
  ['SOPInstanceUID', 'x00080018'],
];

/** The public attributes; `voiRaw` and `shape` as the VOI and Presentation stages read them. */
export function collectMetadata(p: Prepared, voiRaw: string, shape: string | undefined): DicomPublicMetadata {
  const { ds } = p;
  const metadata: DicomPublicMetadata = {
    TransferSyntaxUID: p.ts,
    TransferSyntaxName: p.tsName,
    Rows: p.rows,
    Columns: p.cols,
    SamplesPerPixel: p.spp,
    PhotometricInterpretation: p.photometricRaw,
    BitsAllocated: p.bitsAllocated,
    BitsStored: p.bitsStored,
    HighBit: p.highBit,
    PixelRepresentation: p.pixelRep,
    NumberOfFrames: p.declaredFrames,
    RescaleSlope: num(ds, 'x00281053') ?? 1,
    RescaleIntercept: num(ds, 'x00281052') ?? 0,
  };
  for (const [key, tag] of PUBLIC_STRING_TAGS) {
    const v = str(ds, tag);
    if (v !== undefined) (metadata as unknown as Record<string, unknown>)[key] = v;
  }
  const ps = ds2(ds, 'x00280030');
  if (ps) metadata.PixelSpacing = ps;
  const ips = ds2(ds, 'x00181164');
  if (ips) metadata.ImagerPixelSpacing = ips;
  const wc = num(ds, 'x00281050');
  const ww = num(ds, 'x00281051');
  if (wc !== undefined) metadata.WindowCenter = wc;
  if (ww !== undefined) metadata.WindowWidth = ww;
  if (ds.elements.x00281056) metadata.VOILUTFunction = voiRaw;
  if (shape) metadata.PresentationLUTShape = shape;
  if (p.spp === 3) metadata.PlanarConfiguration = p.planarConfig;
  return metadata;
}

/** The identifying attributes that are present (PS3.15 E.1-1 lists more; these are the ones an X-ray carries). */
export function collectIdentifying(ds: DataSet): DicomIdentifyingMetadata {
  const identifying: DicomIdentifyingMetadata = {};
  for (const [key, tag] of IDENTIFYING_TAGS) {
    const v = str(ds, tag);
    if (v !== undefined) identifying[key] = v;
  }
  return identifying;
}
