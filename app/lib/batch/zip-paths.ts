/**
 * Zip entry names are untrusted: `../x.png`, `/abs/x.png`, `C:/x.png` or `a\..\..\x.png` name places outside any
 * folder the entry could be written to ("zip slip"). Batch mode writes no entry files, but entry names become
 * image ids, ground-truth folders and, in exports, file names; so every unsafe name is made safe the way Python's
 * zipfile.ZipFile._extract_member does (drive letter and leading separators dropped, '', '.' and '..' segments
 * dropped, backslashes taken as separators as on Windows) and the change is reported, never silent.
 */

/** Why an entry name is unsafe, or undefined when it is a plain relative path. */
export function unsafeEntryReason(name: string): string | undefined {
  const reasons: string[] = [];
  if (name.includes('\\')) reasons.push('backslashes');
  const segs = name.split(/[\\/]+/);
  if (/^[A-Za-z]:/.test(name)) reasons.push('a drive letter');
  if (/^[\\/]/.test(name)) reasons.push('an absolute path');
  if (segs.includes('..')) reasons.push("'..' segments");
  else if (segs.slice(0, -1).includes('.') || segs[segs.length - 1] === '.' || /[^\\/][\\/]{2,}/.test(name)) reasons.push("'.' or empty segments");
  if (name.includes('\0')) reasons.push('a NUL character');
  return reasons.length ? reasons.join(', ') : undefined;
}

/**
 * The safe form of an entry name (Python zipfile's extraction rule, with '\\' as a separator everywhere): '' when
 * nothing is left (the entry must be skipped). Directory entries keep their trailing '/'.
 */
export function sanitizeEntryPath(name: string): string {
  const dir = /[\\/]$/.test(name);
  const body = name.replace(/\0/g, '').replace(/^[A-Za-z]:/, '');
  const segs = body.split(/[\\/]+/).filter((s) => s !== '' && s !== '.' && s !== '..');
  return segs.length ? segs.join('/') + (dir ? '/' : '') : '';
}
