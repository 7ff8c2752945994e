"""Independent reference decodes for the DICOM tests: pydicom 3 + pylibjpeg / pylibjpeg-libjpeg /
pylibjpeg-openjpeg / pyjpegls (pinned in export-scripts/requirements.txt).

usage: python pydicom_reference.py OUT_DIR FILE...

For the i-th FILE (0-based) writes OUT_DIR/<i>.<kind>.npy and OUT_DIR/<i>.json (what was written and the file's
attributes). Kinds:
  pixel     ds.pixel_array, all frames (frames, rows, cols[, samples]); colour as pydicom returns it (RGB for
            YBR_FULL/YBR_FULL_422 and for JPEG colour, see pydicom's as_rgb default)
  modality  pydicom.pixels.apply_modality_lut(pixel, ds) (float64 or the LUT's dtype), greyscale only
  voi       pydicom.pixels.apply_voi_lut(modality, ds, index=0): VOI LUT Sequence item 0, else window 0
  window    apply_windowing(modality, ds, index=0) when the file has both a VOI LUT Sequence and windows
  rgb       pydicom.pixels.apply_color_lut(pixel, ds) for PALETTE COLOR
  raw       ds.pixel_array with as_rgb=False (the stored YBR samples) for YBR photometrics
A file pydicom cannot read gets {"error": "..."} in its JSON.
"""
import json
import os
import sys
import warnings

import numpy as np
import pydicom
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, apply_windowing, pixel_array


def frames_first(arr: np.ndarray, ds) -> np.ndarray:
    n = int(getattr(ds, 'NumberOfFrames', 1) or 1)
    spp = int(getattr(ds, 'SamplesPerPixel', 1) or 1)
    if n == 1:
        return arr[None, ...]
    return arr if arr.ndim == (4 if spp > 1 else 3) else arr[None, ...]


def save(path: str, arr: np.ndarray) -> None:
    # little-endian on disk whatever pydicom returned (big endian syntaxes give '>u2' views)
    arr = np.asarray(arr)
    np.save(path, arr.astype(arr.dtype.newbyteorder('<')) if arr.dtype.byteorder == '>' else arr)


def main() -> None:
    warnings.simplefilter('ignore')  # pydicom warns about float VOI input; the test compares, it does not care
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for i, path in enumerate(sys.argv[2:]):
        name = str(i)
        info: dict = {'file': path}
        try:
            ds = pydicom.dcmread(path, force=True)
            if 'TransferSyntaxUID' not in getattr(ds, 'file_meta', {}):
                # a bare data set (no meta header): pydicom knows the encoding it read, pixel_array wants the UID
                implicit, little = ds.original_encoding
                ds.file_meta = getattr(ds, 'file_meta', None) or pydicom.dataset.FileMetaDataset()
                ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian if implicit else (
                    pydicom.uid.ExplicitVRLittleEndian if little else pydicom.uid.ExplicitVRBigEndian)
            pi = str(getattr(ds, 'PhotometricInterpretation', ''))
            info.update(
                transfer_syntax=str(ds.file_meta.TransferSyntaxUID) if 'TransferSyntaxUID' in getattr(ds, 'file_meta', {}) else None,
                photometric=pi,
                frames=int(getattr(ds, 'NumberOfFrames', 1) or 1),
            )
            arr = ds.pixel_array
            pixel = frames_first(arr, ds)
            save(os.path.join(out, f'{name}.pixel.npy'), pixel)
            kinds = ['pixel']
            if pi.startswith('YBR'):
                raw = frames_first(pixel_array(ds, as_rgb=False), ds)
                save(os.path.join(out, f'{name}.raw.npy'), raw)
                kinds.append('raw')
            if pi == 'PALETTE COLOR':
                save(os.path.join(out, f'{name}.rgb.npy'), apply_color_lut(pixel, ds))
                kinds.append('rgb')
            elif int(getattr(ds, 'SamplesPerPixel', 1)) == 1:
                modality = apply_modality_lut(pixel, ds)
                save(os.path.join(out, f'{name}.modality.npy'), modality)
                kinds.append('modality')
                has_voi_seq = 'VOILUTSequence' in ds
                has_window = 'WindowCenter' in ds and 'WindowWidth' in ds
                if has_voi_seq or has_window:
                    save(os.path.join(out, f'{name}.voi.npy'), apply_voi_lut(modality, ds, index=0))
                    kinds.append('voi')
                if has_voi_seq and has_window:
                    save(os.path.join(out, f'{name}.window.npy'), apply_windowing(modality, ds, index=0))
                    kinds.append('window')
            info['kinds'] = kinds
        except Exception as e:  # noqa: BLE001 - the test wants pydicom's verdict, whatever it is
            info['error'] = f'{type(e).__name__}: {e}'
        with open(os.path.join(out, f'{name}.json'), 'w') as f:
            json.dump(info, f)


if __name__ == '__main__':
    main()
