"""Write the small DICOM fixtures of tests/unit/imaging/pipeline-pydicom.test.ts with pydicom (not with the
project's own writer, so that a misreading of the standard cannot hide on both sides).

usage: python make_dicoms.py OUT_DIR        -> OUT_DIR/<name>.dcm and OUT_DIR/cases.json

Each case in cases.json: {"name", "file", "expect": "decode" | "<error code>", "why", "ref"}. "decode" cases are
compared with pydicom's own reading (pydicom_reference.py) of the case named by "ref" (itself, unless pydicom cannot
read it); error cases name what our message must mention.
"""
import json
import os
import sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import get_encoder
from pydicom.uid import (
    JPEG2000Lossless,
    JPEGLSLossless,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

W, H = 24, 16


def base(rows=H, cols=W, bits=16, stored=12, signed=0, photometric='MONOCHROME2', spp=1) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.1.1'  # DX
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientName = 'QA^SYNTHETIC'
    ds.PatientID = 'QA-0001'
    ds.Modality = 'DX'
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = spp
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, stored, stored - 1
    ds.PixelRepresentation = signed
    if spp == 3:
        ds.PlanarConfiguration = 0
    return ds


def ramp(lo, hi, rows=H, cols=W, dtype=np.uint16, frames=1, step=0):
    n = rows * cols
    out = []
    for f in range(frames):
        v = np.linspace(lo, hi, n).round().astype(np.int64) + f * step
        out.append(v.reshape(rows, cols).astype(dtype))
    return out[0] if frames == 1 else np.stack(out)


def save(ds: Dataset, out: str, name: str, ts) -> str:
    ds.file_meta.TransferSyntaxUID = ts
    path = os.path.join(out, f'{name}.dcm')
    ds.save_as(path, enforce_file_format=True)
    return path


def main() -> None:
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    cases = []

    def case(name, expect='decode', why='', ref=None):
        # ref: compare with pydicom's reading of another file holding the same data (where pydicom cannot read this one)
        cases.append({'name': name, 'file': os.path.join(out, f'{name}.dcm'), 'expect': expect, 'why': why, 'ref': ref or name})

    # VOI LUT Functions (PS3.3 C.11.2.1.3): LINEAR_EXACT and SIGMOID, two windows each
    for fn in ['LINEAR_EXACT', 'SIGMOID', 'LINEAR']:
        ds = base()
        ds.WindowCenter = [2048, 1000]
        ds.WindowWidth = [1024, 500]
        ds.WindowCenterWidthExplanation = ['SOFT', 'BONE']
        ds.VOILUTFunction = fn
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelData = ramp(0, 4095).tobytes()
        save(ds, out, f'voi-{fn.lower()}', ExplicitVRLittleEndian)
        case(f'voi-{fn.lower()}')

    # Presentation LUT Shape INVERSE on MONOCHROME2 (PS3.3 C.11.6)
    ds = base()
    ds.PresentationLUTShape = 'INVERSE'
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.PixelData = ramp(0, 4095).tobytes()
    save(ds, out, 'presentation-inverse', ExplicitVRLittleEndian)
    case('presentation-inverse')

    # Rescale with a negative intercept (CT-like), signed 16-bit
    ds = base(stored=16, signed=1)
    ds.RescaleSlope, ds.RescaleIntercept = 0.5, -1024
    ds.WindowCenter, ds.WindowWidth = -600, 1500
    ds.PixelData = ramp(-2000, 3000, dtype=np.int16).tobytes()
    save(ds, out, 'rescale-signed', ExplicitVRLittleEndian)
    case('rescale-signed')

    # 8-bit pixels in OW under Explicit VR Big Endian: OW words are byte-swapped in the file
    ds = base(bits=8, stored=8)
    px = ramp(10, 240, dtype=np.uint8)
    ds.PixelData = px.tobytes()
    ds['PixelData'].VR = 'OW'
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    path = os.path.join(out, 'be-8bit-ow.dcm')
    # pydicom writes OW values as given: give it the big-endian word order (pairs swapped)
    ds.PixelData = px.reshape(-1, 2)[:, ::-1].tobytes()
    ds.save_as(path, enforce_file_format=True)
    assert (pydicom.dcmread(path).pixel_array == px).all(), 'pydicom does not read back the BE OW fixture'
    case('be-8bit-ow')
    # the same, 16-bit
    ds = base()
    px16 = ramp(100, 4000)
    ds.PixelData = px16.byteswap().tobytes()
    save(ds, out, 'be-16bit', ExplicitVRBigEndian)
    assert (pydicom.dcmread(os.path.join(out, 'be-16bit.dcm')).pixel_array == px16).all()
    case('be-16bit')

    # Multi-frame: native (3 frames) and RLE with an empty Basic Offset Table (2 frames)
    ds = base()
    ds.NumberOfFrames = 3
    ds.PixelData = ramp(0, 1000, frames=3, step=1000).tobytes()
    save(ds, out, 'multiframe-native', ExplicitVRLittleEndian)
    case('multiframe-native')
    ds = base()
    ds.NumberOfFrames = 2
    frames = ramp(200, 3800, frames=2, step=-100)
    enc = get_encoder(RLELossless)  # pydicom's own RLE encoder
    rle = list(enc.iter_encode(frames, rows=H, columns=W, samples_per_pixel=1, bits_allocated=16, bits_stored=12,
                               pixel_representation=0, photometric_interpretation='MONOCHROME2', number_of_frames=2,
                               encoding_plugin='pydicom'))
    ds.PixelData = encapsulate(rle, has_bot=False)
    save(ds, out, 'multiframe-rle-empty-bot', RLELossless)
    case('multiframe-rle-empty-bot')

    # Multi-frame compressed with a Basic Offset Table, and with an Extended Offset Table (PS3.5 A.4)
    for name, uid, ext in (('multiframe-jpegls-bot', JPEGLSLossless, False), ('multiframe-rle-bot', RLELossless, False),
                           ('multiframe-jpegls-eot', JPEGLSLossless, True)):
        ds = base()
        ds.NumberOfFrames = 3
        arr = ramp(0, 1000, frames=3, step=1000)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.PixelData = arr.tobytes()
        ds.compress(uid, arr, encapsulate_ext=ext)
        save(ds, out, name, uid)
        case(name)

    # Implicit VR, Deflated
    ds = base()
    ds.PixelData = ramp(5, 4000).tobytes()
    save(ds, out, 'implicit', ImplicitVRLittleEndian)
    case('implicit')
    ds = base()
    ds.PixelData = ramp(5, 4000).tobytes()
    save(ds, out, 'deflated', DeflatedExplicitVRLittleEndian)
    case('deflated')

    # native YBR_FULL (3 samples, interleaved) and RGB planar configuration 1
    ds = base(bits=8, stored=8, photometric='YBR_FULL', spp=3)
    rgb = np.stack([ramp(0, 255, dtype=np.uint8), ramp(255, 0, dtype=np.uint8), np.full((H, W), 90, np.uint8)], -1)
    ybr = pydicom.pixels.convert_color_space(rgb, 'RGB', 'YBR_FULL')
    ds.PixelData = ybr.tobytes()
    save(ds, out, 'ybr-full', ExplicitVRLittleEndian)
    case('ybr-full')
    ds = base(bits=8, stored=8, photometric='RGB', spp=3)
    ds.PlanarConfiguration = 1
    ds.PixelData = np.moveaxis(rgb, -1, 0).tobytes()
    save(ds, out, 'rgb-planar1', ExplicitVRLittleEndian)
    case('rgb-planar1')

    # Colour through the codecs, encoded by pydicom's own encoders (RLE) and plugins (pyjpegls, pylibjpeg-openjpeg).
    # JPEG 2000 needs a frame large enough for its 5 decomposition levels: 64×64.
    big = 64
    rgb64 = np.stack([ramp(0, 255, big, big, np.uint8), ramp(255, 0, big, big, np.uint8), np.full((big, big), 90, np.uint8)], -1)
    for name, uid, planar, pi, size in (
        ('rle-rgb', RLELossless, 0, 'RGB', None),
        ('jpegls-rgb-planar0', JPEGLSLossless, 0, 'RGB', None),
        ('jpegls-rgb-planar1', JPEGLSLossless, 1, 'RGB', None),
        ('j2k-rgb', JPEG2000Lossless, 0, 'RGB', big),  # pydicom: no multiple-component transform for RGB
        ('j2k-ybr-rct', JPEG2000Lossless, 0, 'YBR_RCT', big),  # with the reversible colour transform
    ):
        src = rgb64 if size else rgb
        ds = base(rows=src.shape[0], cols=src.shape[1], bits=8, stored=8, photometric='RGB', spp=3)
        ds.PlanarConfiguration = planar
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.PixelData = (np.moveaxis(src, -1, 0) if planar else src).tobytes()
        ds.PhotometricInterpretation = pi
        ds.compress(uid, src, encoding_plugin='pylibjpeg' if uid == JPEG2000Lossless else '')
        save(ds, out, name, uid)
        case(name)
    # signed 16-bit greyscale through JPEG-LS and JPEG 2000 (CT-like values)
    for name, uid in (('jpegls-signed16', JPEGLSLossless), ('j2k-signed16', JPEG2000Lossless)):
        ds = base(rows=big, cols=big, stored=16, signed=1)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        arr = ramp(-2000, 3000, big, big, dtype=np.int16)
        ds.PixelData = arr.tobytes()
        ds.compress(uid, arr)
        save(ds, out, name, uid)
        case(name)

    # Modality LUT Sequence on unsigned input, 8-bit packed LUT data is not written by pydicom; 16-bit here
    ds = base()
    item = Dataset()
    item.LUTDescriptor = [256, 1000, 16]
    item.ModalityLUTType = 'OD'
    item.add_new(0x00283006, 'US', [int(v) for v in np.linspace(0, 60000, 256)])  # LUT Data, US
    ds.ModalityLUTSequence = [item]
    ds.PixelData = ramp(900, 1400).tobytes()
    save(ds, out, 'modality-lut', ExplicitVRLittleEndian)
    case('modality-lut')

    # VOI LUT Sequence (2 items) next to a window
    ds = base()
    items = []
    for k, (first, n) in enumerate([(0, 4096), (1000, 1024)]):
        it = Dataset()
        it.LUTDescriptor = [n, first, 12]
        it.LUTExplanation = f'LUT{k + 1}'
        it.add_new(0x00283006, 'US', [int(v) for v in (np.linspace(0, 1, n) ** (0.5 + k) * 4095).round()])
        items.append(it)
    ds.VOILUTSequence = items
    ds.WindowCenter, ds.WindowWidth = 2000, 3000
    ds.PixelData = ramp(0, 4095).tobytes()
    save(ds, out, 'voi-lut-sequence', ExplicitVRLittleEndian)
    case('voi-lut-sequence')

    # Refusals and irregular files -----------------------------------------------------------------------------
    ds = base(bits=8, stored=8)
    ds.PixelData = encapsulate([b'\xff\x0a' + bytes(30)])
    # JPEG XL (PS3.5 2024) is newer than pydicom 3.0's UID dictionary: register it so pydicom will write it
    from pydicom._uid_dict import UID_dictionary
    UID_dictionary.setdefault('1.2.840.10008.1.2.4.110', ('JPEG XL Lossless', 'Transfer Syntax', '', '', 'JPEGXLLossless'))
    save(ds, out, 'jpeg-xl', '1.2.840.10008.1.2.4.110')
    case('jpeg-xl', 'unsupported-transfer-syntax', 'JPEG XL')

    # a private sequence whose Sequence Delimitation Item carries 0xFFFFFFFF (must be 0), before Pixel Data
    ds = base()
    ds.add_new(0x00091010, 'LO', 'QA PRIVATE')
    inner = Dataset()
    inner.add_new(0x00091001, 'LO', 'x')
    ds.add_new(0x00091020, 'SQ', [inner])
    ds[0x00091020].is_undefined_length = True  # written with a Sequence Delimitation Item
    ds.PixelData = ramp(200, 3800).tobytes()
    p = save(ds, out, 'seqdelim-ffffffff-in-sq', ExplicitVRLittleEndian)
    raw = bytearray(open(p, 'rb').read())
    # pydicom wrote the SQ with undefined length and a zero-length delimiter: break the delimiter's length
    i = raw.find(b'\xfe\xff\xdd\xe0\x00\x00\x00\x00')
    assert i > 0
    raw[i + 4:i + 8] = b'\xff\xff\xff\xff'
    open(p, 'wb').write(raw)
    case('seqdelim-ffffffff-in-sq')

    # the same kind in other places: an Item Delimitation Item with a non-zero length inside an undefined-length
    # item (explicit VR), and an implicit VR private sequence whose Sequence Delimitation Item says 0xFFFFFFFF
    for name, ts in (('itemdelim-nonzero-explicit', ExplicitVRLittleEndian), ('seqdelim-ffffffff-implicit', ImplicitVRLittleEndian)):
        ds = base()
        ds.add_new(0x00091010, 'LO', 'QA PRIVATE')
        inner = Dataset()
        inner.add_new(0x00091001, 'LO', 'x')
        inner.is_undefined_length_sequence_item = True
        ds.add_new(0x00091020, 'SQ', [inner])
        ds[0x00091020].is_undefined_length = True
        ds.PixelData = ramp(200, 3800).tobytes()
        p = save(ds, out, name, ts)
        raw = bytearray(open(p, 'rb').read())
        marker = b'\xfe\xff\x0d\xe0\x00\x00\x00\x00' if name.startswith('item') else b'\xfe\xff\xdd\xe0\x00\x00\x00\x00'
        i = raw.find(marker)
        assert i > 0, name
        raw[i + 4:i + 8] = b'\x04\x00\x00\x00' if name.startswith('item') else b'\xff\xff\xff\xff'
        open(p, 'wb').write(raw)
        case(name)

    # bytes after the Pixel Data that are not an element
    ds = base()
    ds.PixelData = ramp(1, 4000).tobytes()
    p = save(ds, out, 'trailing-garbage', ExplicitVRLittleEndian)
    open(p, 'ab').write(b'\x00\x01\x02')
    case('trailing-garbage')

    # a file cut inside its Pixel Data
    ds = base()
    ds.PixelData = ramp(1, 4000).tobytes()
    p = save(ds, out, 'truncated-pixel-data', ExplicitVRLittleEndian)
    raw = open(p, 'rb').read()
    open(p, 'wb').write(raw[: len(raw) - 300])
    case('truncated-pixel-data', 'truncated', 'Pixel Data')

    # Rows/Columns say more than the Pixel Data holds (not a truncated file: the header is wrong)
    ds = base()
    ds.PixelData = ramp(1, 4000).tobytes()
    ds.Rows = H + 4
    save(ds, out, 'rows-larger-than-data', ExplicitVRLittleEndian)
    case('rows-larger-than-data', 'truncated', 'bytes')

    # Stored-value corner cases ----------------------------------------------------------------------------------
    ds = base(rows=1, cols=2)
    ds.PixelData = np.array([0xF123, 0x0FFF], np.uint16).tobytes()  # bits 12-15 are not part of the value
    save(ds, out, 'overlay-high-bits', ExplicitVRLittleEndian)
    case('overlay-high-bits')
    ds = base(rows=1, cols=2, signed=1)
    ds.PixelData = np.array([0x0800, 0x07FF], np.uint16).tobytes()  # signed 12-bit: -2048, 2047
    save(ds, out, 'signed-12', ExplicitVRLittleEndian)
    case('signed-12')
    ds = base(rows=1, cols=3, bits=8, stored=8, photometric='MONOCHROME1')
    ds.PixelData = bytes([0, 128, 255, 0])  # padded to even length
    save(ds, out, 'mono1-8bit', ExplicitVRLittleEndian)
    case('mono1-8bit')

    # 1-bit (bit-packed, PS3.5 8.1.1 / D.1) and 32-bit allocated pixels
    from pydicom.pixels import pack_bits
    ds = base(rows=H, cols=W, bits=1, stored=1)
    ds.PixelData = pack_bits((ramp(0, 1000) % 3 == 0).astype(np.uint8))
    save(ds, out, 'bits-1', ExplicitVRLittleEndian)
    case('bits-1')
    ds = base(bits=32, stored=32)
    ds.PixelData = ramp(0, 3_000_000_000, dtype=np.uint32).tobytes()
    save(ds, out, 'bits-32', ExplicitVRLittleEndian)
    case('bits-32')

    # Pixel Padding Value: a CR-like frame whose border (outside the collimation) holds the padding value 0
    ds = base()
    arr = ramp(1000, 3000)
    arr[:3, :] = 0
    arr[:, :2] = 0
    ds.PixelPaddingValue = 0
    ds.PixelData = arr.tobytes()
    save(ds, out, 'pixel-padding', ExplicitVRLittleEndian)
    case('pixel-padding')

    # Files without preamble / meta header (PS3.10 7.1; bare data sets from older systems)
    ds = base()
    ds.PixelData = ramp(10, 3000).tobytes()
    p = save(ds, out, 'full-file', ExplicitVRLittleEndian)
    raw = open(p, 'rb').read()
    case('full-file')
    open(os.path.join(out, 'meta-no-preamble.dcm'), 'wb').write(raw[132:])
    case('meta-no-preamble')
    open(os.path.join(out, 'dicm-no-preamble.dcm'), 'wb').write(raw[128:])
    case('dicm-no-preamble', ref='full-file')  # pydicom does not find the meta header without the preamble
    for implicit in (True, False):
        ds = base()
        ds.PixelData = ramp(10, 3000).tobytes()
        del ds.file_meta
        name = 'bare-implicit' if implicit else 'bare-explicit'
        pydicom.dcmwrite(os.path.join(out, f'{name}.dcm'), ds, implicit_vr=implicit, little_endian=True)
        case(name)

    # The meta header says Explicit VR Little Endian, the data set is Implicit VR (and the reverse): pydicom notices
    # and reads the data set as it is encoded
    meta_end = 132 + 12 + int.from_bytes(raw[140:144], 'little')  # (0002,0000) UL group length value
    bare_implicit = open(os.path.join(out, 'bare-implicit.dcm'), 'rb').read()
    open(os.path.join(out, 'says-explicit-is-implicit.dcm'), 'wb').write(raw[:meta_end] + bare_implicit)
    case('says-explicit-is-implicit')
    ds = base()
    ds.PixelData = ramp(10, 3000).tobytes()
    p = save(ds, out, 'implicit-file', ImplicitVRLittleEndian)
    raw_i = open(p, 'rb').read()
    meta_end_i = 132 + 12 + int.from_bytes(raw_i[140:144], 'little')
    bare_explicit = open(os.path.join(out, 'bare-explicit.dcm'), 'rb').read()
    open(os.path.join(out, 'says-implicit-is-explicit.dcm'), 'wb').write(raw_i[:meta_end_i] + bare_explicit)
    case('says-implicit-is-explicit')

    # No Pixel Data (e.g. a structured report)
    ds = base()
    save(ds, out, 'no-pixel-data', ExplicitVRLittleEndian)
    case('no-pixel-data', 'no-pixel-data', 'no Pixel Data')

    # JPEG Baseline colour (Pillow's libjpeg, 4:2:0), and the same stream under a 1-sample header
    from io import BytesIO
    from PIL import Image
    rgb = np.stack([ramp(0, 255, dtype=np.uint8), ramp(255, 0, dtype=np.uint8), np.full((H, W), 90, np.uint8)], -1)
    buf = BytesIO()
    Image.fromarray(rgb, 'RGB').save(buf, format='JPEG', quality=95)
    ds = base(bits=8, stored=8, photometric='YBR_FULL_422', spp=3)
    ds.PixelData = encapsulate([buf.getvalue()])
    save(ds, out, 'jpeg-baseline-rgb', '1.2.840.10008.1.2.4.50')
    case('jpeg-baseline-rgb')
    ds = base(bits=8, stored=8)
    ds.PixelData = encapsulate([buf.getvalue()])
    save(ds, out, 'jpeg-3comp-in-1-sample-header', '1.2.840.10008.1.2.4.50')
    case('jpeg-3comp-in-1-sample-header', 'corrupt', '3 components')

    # A JPEG 2000 fragment that is no codestream
    ds = base()
    ds.PixelData = encapsulate([b'\xff\x4f\xff\x51' + bytes(40)])
    save(ds, out, 'j2k-garbage', '1.2.840.10008.1.2.4.90')
    case('j2k-garbage', 'corrupt', 'codec-openjpeg')

    with open(os.path.join(out, 'cases.json'), 'w') as f:
        json.dump(cases, f, indent=1)


if __name__ == '__main__':
    main()
