"""Check `npm run convert` outputs independently: read its PNG/.npy files with Pillow/NumPy and compare them with what
pydicom makes of the source DICOM.

usage: python convert_reference.py OUT_DIR STEM=FILE...   -> JSON on stdout: {stem: {...}}

Display reference (what the viewer must show at its default window): pydicom's apply_modality_lut, then
apply_voi_lut (VOI LUT Sequence item 0, else window 0: pydicom's own choice) normalised to 0..255 from the stored
range, or, without any VOI in the file or when its window shows nothing, the full min..max range; inverted for MONOCHROME1 and Presentation LUT Shape
INVERSE (PS3.3 C.11.6; pydicom leaves presentation to the viewer).
"""
import json
import os
import sys
import warnings

import numpy as np
import pydicom
from PIL import Image
from pydicom.pixels import apply_modality_lut, apply_voi_lut


def main() -> None:
    warnings.simplefilter('ignore')
    out = sys.argv[1]
    res = {}
    for arg in sys.argv[2:]:
        stem, path = arg.split('=', 1)
        r: dict = {}
        ds = pydicom.dcmread(path)
        px = ds.pixel_array
        if int(getattr(ds, 'NumberOfFrames', 1) or 1) > 1:
            px = px[0]
        png = np.asarray(Image.open(os.path.join(out, f'{stem}.png')))
        r['png_shape'] = list(png.shape)
        r['png_dtype'] = str(png.dtype)
        if int(ds.SamplesPerPixel) == 1 and ds.PhotometricInterpretation.startswith('MONOCHROME'):
            mod = apply_modality_lut(px, ds).astype(np.float64)
            if 'VOILUTSequence' in ds:
                item = ds.VOILUTSequence[0]
                bits = int(item.LUTDescriptor[2])
                disp = apply_voi_lut(mod, ds, index=0).astype(np.float64) * 255 / (2**bits - 1)
            elif 'WindowCenter' in ds:
                bs = int(ds.BitsStored)
                signed = int(ds.PixelRepresentation) == 1
                lo, hi = (-(2 ** (bs - 1)), 2 ** (bs - 1) - 1) if signed else (0, 2**bs - 1)
                slope, icpt = float(getattr(ds, 'RescaleSlope', 1)), float(getattr(ds, 'RescaleIntercept', 0))
                lo, hi = lo * slope + icpt, hi * slope + icpt
                disp = (apply_voi_lut(mod, ds, index=0).astype(np.float64) - lo) / (hi - lo) * 255
                if disp.min() == disp.max():
                    disp = None  # the file's window shows nothing (e.g. it lies below every pixel): full range instead
            else:
                disp = None
            if disp is None:
                disp = (mod - mod.min()) / max(mod.max() - mod.min(), 1e-12) * 255
            inverse = ds.PhotometricInterpretation == 'MONOCHROME1' or str(getattr(ds, 'PresentationLUTShape', '')) == 'INVERSE'
            if inverse:
                disp = 255 - disp
            r['display_max_diff'] = float(np.abs(png.astype(np.float64) - disp).max())
            r['inverted'] = bool(inverse)
            if os.path.exists(os.path.join(out, f'{stem}.modality.png')):
                m = np.asarray(Image.open(os.path.join(out, f'{stem}.modality.png'))).astype(np.float64)
                r['modality_png_max_diff'] = float(np.abs(m - mod).max())
            if os.path.exists(os.path.join(out, f'{stem}.modality.npy')):
                m = np.load(os.path.join(out, f'{stem}.modality.npy')).astype(np.float64)
                r['modality_npy_max_diff'] = float(np.abs(m - mod).max())
                r['modality_npy_max_rel'] = float((np.abs(m - mod) / np.maximum(np.abs(mod), 1e-6)).max())
        res[stem] = r
    print(json.dumps(res))


if __name__ == '__main__':
    main()
