import fs from 'node:fs';
import { expect, test } from '@playwright/test';
import { addFiles, CLASSIFIER_ID, FIXTURE_CLASSIFIER_ID, hasSharedData, kermanyImage, manifestHas, openApp, shot, waitForClassification, watchErrors, needsSharedData, needsModel } from './helpers';

/** A minimal DICOM Part-10 file whose pixels are JPEG 2000 (transfer syntax 1.2.840.10008.1.2.4.90). */
function jpeg2000Dicom(): Buffer {
  const parts: Buffer[] = [Buffer.alloc(128), Buffer.from('DICM')];
  const el = (group: number, element: number, vr: string, value: Buffer): Buffer => {
    const long = ['OB', 'OW', 'SQ', 'UN', 'UT'].includes(vr);
    const h = Buffer.alloc(long ? 12 : 8);
    h.writeUInt16LE(group, 0);
    h.writeUInt16LE(element, 2);
    h.write(vr, 4, 'latin1');
    if (long) h.writeUInt32LE(value.length, 8);
    else h.writeUInt16LE(value.length, 6);
    return Buffer.concat([h, value]);
  };
  const ui = (s: string) => {
    const b = Buffer.from(s, 'latin1');
    return b.length % 2 ? Buffer.concat([b, Buffer.from([0])]) : b;
  };
  const us = (n: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(n);
    return b;
  };
  const ts = '1.2.840.10008.1.2.4.90';
  const meta = Buffer.concat([
    el(0x0002, 0x0001, 'OB', Buffer.from([0, 1])),
    el(0x0002, 0x0002, 'UI', ui('1.2.840.10008.5.1.4.1.1.7')),
    el(0x0002, 0x0003, 'UI', ui('1.2.3.4.5')),
    el(0x0002, 0x0010, 'UI', ui(ts)),
  ]);
  const groupLen = Buffer.alloc(4);
  groupLen.writeUInt32LE(meta.length);
  parts.push(el(0x0002, 0x0000, 'UL', groupLen), meta);
  parts.push(
    el(0x0008, 0x0060, 'CS', Buffer.from('DX')),
    el(0x0028, 0x0002, 'US', us(1)),
    el(0x0028, 0x0004, 'CS', Buffer.from('MONOCHROME2 ')),
    el(0x0028, 0x0010, 'US', us(64)),
    el(0x0028, 0x0011, 'US', us(64)),
    el(0x0028, 0x0100, 'US', us(16)),
    el(0x0028, 0x0101, 'US', us(12)),
    el(0x0028, 0x0102, 'US', us(11)),
    el(0x0028, 0x0103, 'US', us(0)),
  );
  // Encapsulated pixel data: undefined length, empty basic offset table, one fragment with a J2K codestream start.
  const px = Buffer.alloc(12);
  px.writeUInt16LE(0x7fe0, 0);
  px.writeUInt16LE(0x0010, 2);
  px.write('OB', 4, 'latin1');
  px.writeUInt32LE(0xffffffff, 8);
  const item = (data: Buffer) => {
    const h = Buffer.alloc(8);
    h.writeUInt16LE(0xfffe, 0);
    h.writeUInt16LE(0xe000, 2);
    h.writeUInt32LE(data.length, 4);
    return Buffer.concat([h, data]);
  };
  const j2k = Buffer.concat([Buffer.from([0xff, 0x4f, 0xff, 0x51]), Buffer.alloc(60)]);
  const end = Buffer.alloc(8);
  end.writeUInt16LE(0xfffe, 0);
  end.writeUInt16LE(0xe0dd, 2);
  parts.push(px, item(Buffer.alloc(0)), item(j2k), end);
  return Buffer.concat(parts);
}

/** A structurally valid PNG header claiming 30000×30000 pixels (900 MP), with an IEND chunk; never decoded. */
function hugePng(): Buffer {
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const ihdr = Buffer.alloc(25);
  ihdr.writeUInt32BE(13, 0);
  ihdr.write('IHDR', 4, 'latin1');
  ihdr.writeUInt32BE(30000, 8);
  ihdr.writeUInt32BE(30000, 12);
  ihdr[16] = 8; // bit depth
  ihdr[17] = 0; // grayscale
  const iend = Buffer.from([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);
  return Buffer.concat([sig, ihdr, iend]);
}

test('bad inputs give a clear alert and the result on screen stays', async ({ page }) => {
  needsSharedData();
  const id = manifestHas(CLASSIFIER_ID) ? CLASSIFIER_ID : FIXTURE_CLASSIFIER_ID;
  needsModel(id);
  const errors = watchErrors(page);
  await openApp(page, { backend: 'wasm', classifier: id });
  const good = kermanyImage('PNEUMONIA', 1);
  await addFiles(page, [good]);
  const first = await waitForClassification(page);
  const probs = (await page.getByTestId('classification-result').textContent()) ?? '';

  const jpeg = fs.readFileSync(good);
  const cases: { name: string; buffer: Buffer; mimeType: string; expect: RegExp }[] = [
    { name: 'notes.png', buffer: Buffer.from('this is a text file, not an image\n'.repeat(20)), mimeType: 'image/png', expect: /not a PNG, JPEG or DICOM/i },
    { name: 'truncated.jpeg', buffer: jpeg.subarray(0, Math.floor(jpeg.length / 2)), mimeType: 'image/jpeg', expect: /truncated/i },
    { name: 'j2k.dcm', buffer: jpeg2000Dicom(), mimeType: 'application/dicom', expect: /JPEG 2000|transfer syntax|compress/i },
    { name: 'empty.png', buffer: Buffer.alloc(0), mimeType: 'image/png', expect: /empty/i },
    { name: 'huge.png', buffer: hugePng(), mimeType: 'image/png', expect: /30000×30000.*limit/i },
  ];
  const alerts = page.getByRole('alert');
  for (const c of cases) {
    await addFiles(page, [{ name: c.name, mimeType: c.mimeType, buffer: c.buffer }]);
    await expect(alerts.getByTestId('alert-item').filter({ hasText: c.name })).toContainText(c.expect);
    // The earlier result stays on screen, unchanged.
    await expect(page.getByTestId('predicted-label')).toHaveText(first.label);
    await expect(page.getByTestId('classification-result')).toHaveText(probs);
  }
  await shot(page, 'bad-inputs');
  // Still working: another good image classifies.
  await addFiles(page, [kermanyImage('NORMAL', 1)]);
  await expect(page.getByRole('list', { name: 'Opened images' }).getByRole('listitem')).toHaveCount(2);
  await waitForClassification(page);
  expect(errors).toEqual([]);
});
