"""Hostile DICOM and PNG inputs of the adversarial KINDS (issue 19), written by pydicom / Pillow / zlib (independent
writers) into the folder given as argv[1]. Each is small on disk and would cost memory, time or stack if a limit
were missing. Synthetic phantoms; patient QA^SYNTHETIC."""
import io, struct, sys, zlib
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, RLELossless, generate_uid
from PIL import Image, PngImagePlugin

out = sys.argv[1]
yy, xx = np.mgrid[0:64, 0:64]


def base(pixels=None, bits=16, ts=ExplicitVRLittleEndian):
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ts
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.PatientName = "QA^SYNTHETIC"
    ds.Modality = "DX"
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Rows = ds.Columns = 64
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = bits
    ds.BitsStored = 12 if bits == 16 else 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    arr = ((xx * 37 + yy * 11) % 4000 + 50).astype(np.uint16) if pixels is None else pixels
    ds.PixelData = arr.astype(np.uint16 if bits == 16 else np.uint8).tobytes()
    return ds


def save(ds, name, implicit=None):
    ds.save_as(f"{out}/{name}", enforce_file_format=True)


# 1. segmented palette whose INDIRECT segments replay a discrete one past the descriptor's 256 (another way to
#    expand a table than 01's linear segments), and one of zero-length segments replayed (time, not memory)
def palette(name, seg):
    ds = base(pixels=(xx * 4 % 256).astype(np.uint8), bits=8)
    ds.PhotometricInterpretation = "PALETTE COLOR"
    data = struct.pack(f"<{len(seg)}H", *seg)
    for c in ("Red", "Green", "Blue"):
        setattr(ds, f"{c}PaletteColorLookupTableDescriptor", [256, 0, 16])
        ds.add_new({"Red": 0x00281221, "Green": 0x00281222, "Blue": 0x00281223}[c], "OW", data)
    save(ds, name)

# 60 discrete segments of 4 values (240 entries, within 256), then one indirect segment replaying all 60: 480
seg = []
for k in range(60):
    seg += [0, 4, k, k + 1, k + 2, k + 3]
palette("palette-indirect-replay.dcm", seg + [2, 60, 0, 0])
palette("palette-ok.dcm", seg + [0, 16] + list(range(100, 116)))  # 256 entries exactly: decodes
# discrete 0 values then 30 indirect segments each replaying the previous 2 segments, nested 8 deep: no output, much walking
seg = [0, 0]
for k in range(8):
    seg += [2, 65535, 0, 0]
palette("palette-empty-replay.dcm", seg)

# 2. Modality LUT: descriptor 0 (65,536 entries) but LUT Data of 10 words; and LUT Data longer than the descriptor
def mlut(name, desc, data):
    ds = base()
    item = Dataset()
    item.LUTDescriptor = desc
    item.ModalityLUTType = "HU"
    item.add_new(0x00283006, "US", list(data))
    ds.ModalityLUTSequence = Sequence([item])
    save(ds, name)

mlut("mlut-short.dcm", [0, 0, 16], range(10))
mlut("mlut-long.dcm", [4096, 0, 16], [(v * 3) % 65536 for v in range(30000)])

# 3. Number of Frames lies: native (2 frames present, 1e6 declared) and RLE (2 fragments, 5000 declared)
two = np.stack([(xx * 37 + yy * 11 + 500 * k) % 4000 + 50 for k in range(2)]).astype(np.uint16)
ds = base(pixels=two)
ds.NumberOfFrames = 1000000
save(ds, "frames-native.dcm")
ds = base(pixels=two)
ds.NumberOfFrames = 2
ds.compress(RLELossless, two)
ds.NumberOfFrames = 5000
save(ds, "frames-rle.dcm")
np.save(f"{out}/frames.npy", two)

# 4. nested sequences 100 deep (explicit, implicit, deflated) and 10 deep (fine)
def nested(name, depth, ts):
    ds = base(ts=ts)
    inner = Dataset()
    inner.CodeValue = "X"
    for _ in range(depth):
        wrap = Dataset()
        wrap.ContentSequence = Sequence([inner])
        inner = wrap
    ds.ContentSequence = inner.ContentSequence
    save(ds, name)

nested("nested-100-explicit.dcm", 100, ExplicitVRLittleEndian)
nested("nested-100-implicit.dcm", 100, ImplicitVRLittleEndian)
nested("nested-100-deflated.dcm", 100, DeflatedExplicitVRLittleEndian)
nested("nested-10.dcm", 10, ExplicitVRLittleEndian)

# 5. zero Rescale Slope; a constant image
ds = base()
ds.RescaleSlope = 0
ds.RescaleIntercept = 5
save(ds, "slope-zero.dcm")
ds = base(pixels=np.full((64, 64), 777, np.uint16))
save(ds, "constant.dcm")

# 6. a deflated data set that inflates to 300 MB (a private OB of zeros before the Pixel Data), written by pydicom
ds = base(ts=DeflatedExplicitVRLittleEndian)
ds.add_new(0x00090010, "LO", "QA BOMB")
ds.add_new(0x00091010, "OB", bytes(300 * 2**20))
save(ds, "deflate-300mb.dcm")

# 7. PNG: compressed metadata chunks (zTXt, iTXt, iCCP) inflating to 64 MB, by Pillow; IDAT with 100 MB of extra
#    zeros after the image rows (plain and interlaced), by zlib
img = Image.fromarray(((xx * 4) % 256).astype(np.uint8), "L")
big = "A" * (64 * 2**20)
info = PngImagePlugin.PngInfo(); info.add_text("Comment", big, zip=True); img.save(f"{out}/ztxt-64mb.png", pnginfo=info)
info = PngImagePlugin.PngInfo(); info.add_itxt("Comment", big, zip=True); img.save(f"{out}/itxt-64mb.png", pnginfo=info)
img.save(f"{out}/iccp-64mb.png", icc_profile=bytes(64 * 2**20))
info = PngImagePlugin.PngInfo(); info.add_text("Comment", "small", zip=True); img.save(f"{out}/ztxt-small.png", pnginfo=info)

def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

def idat_bomb(name, interlace):
    ihdr = struct.pack(">IIBBBBB", 64, 64, 8, 0, 0, 0, interlace)
    raw = b"".join(b"\0" + bytes(((xx[0] * 4 + r) % 256).astype(np.uint8)) for r in range(64))
    z = zlib.compress(raw + bytes(100 * 2**20), 9)
    open(f"{out}/{name}", "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", z) + chunk(b"IEND", b""))

idat_bomb("idat-bomb.png", 0)
idat_bomb("idat-bomb-interlaced.png", 1)

# 8. headers claiming far more pixels than the data holds: a PNG IHDR of 4000×4000 over a 64×64 IDAT (Pillow's
#    bytes, IHDR rewritten), a JPEG SOF of 9999×9999 over 64×64 scan data (Pillow's bytes, SOF rewritten)
b = bytearray(open(f"{out}/ztxt-small.png", "rb").read())
b[16:24] = struct.pack(">II", 4000, 4000)  # under 4096² (larger PNGs are streamed row by row, bounded anyway)
b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])) & 0xFFFFFFFF)
open(f"{out}/ihdr-lie.png", "wb").write(bytes(b))
buf = io.BytesIO(); img.save(buf, "JPEG", quality=90); j = bytearray(buf.getvalue())
k = j.index(b"\xff\xc0")
j[k + 5:k + 9] = struct.pack(">HH", 9999, 9999)
open(f"{out}/sof-lie.jpg", "wb").write(bytes(j))
