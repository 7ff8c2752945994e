"""Write one small DX DICOM full of free text (and a patient name) with pydicom, for convert-phi.test.ts.

usage: python make_freetext_dicom.py OUT.dcm
"""
import sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

ds = Dataset()
ds.file_meta = FileMetaDataset()
ds.file_meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.1.1'
ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
ds.PatientName = 'DOE^JANE'
ds.PatientID = 'MRN-4471'
ds.Modality = 'DX'
ds.StudyDescription = 'CHEST PA for Jane Doe ward 7'
ds.SeriesDescription = 'PA ERECT Dr Smith'
ds.ImageComments = 'pt called Jane, follow up 2026-03-04'
ds.Manufacturer = 'St Elsewhere Radiology'
ds.ManufacturerModelName = 'Room 12 unit'
ds.WindowCenter = [2048, 1000]
ds.WindowWidth = [4096, 1500]
ds.WindowCenterWidthExplanation = ['JANE DOE FULL', 'LUNG for Dr Smith']
ds.Rows, ds.Columns = 16, 24
ds.SamplesPerPixel = 1
ds.PhotometricInterpretation = 'MONOCHROME2'
ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
ds.PixelData = (np.arange(16 * 24, dtype=np.uint16) * 10).tobytes()
ds.save_as(sys.argv[1], enforce_file_format=True)
