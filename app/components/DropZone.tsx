import { useRef, useState } from 'react';
import { useAppStore } from '../store';
import { filesFromDataTransfer } from './dropped-files';

/** Picked or dropped files as references: each is read only when its turn to decode comes (bounded memory). */
export function readPicked(files: (File | { file: File; path: string })[]): { name: string; path: string; blob: Blob }[] {
  return files.map((x) => {
    const f = x instanceof File ? x : x.file;
    return { name: f.name, path: x instanceof File ? f.webkitRelativePath || f.name : x.path, blob: f };
  });
}

export function DropZone() {
  const addFiles = useAppStore((s) => s.addFiles);
  const busy = useAppStore((s) => s.busy > 0);
  const decoding = useAppStore((s) => s.decoding);
  const cancelDecoding = useAppStore((s) => s.cancelDecoding);
  const [over, setOver] = useState(false);
  const folderRef = useRef<HTMLInputElement>(null);

  return (
    <div
      className={`dropzone${over ? ' over' : ''}`}
      data-testid="dropzone"
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={async (e) => {
        e.preventDefault();
        setOver(false);
        const files = await filesFromDataTransfer(e.dataTransfer);
        await addFiles(readPicked(files));
      }}
    >
      <p>
        <strong>Drop chest X-rays here</strong> — PNG, JPEG or DICOM{busy ? ' · decoding…' : ''}
      </p>
      {decoding && (
        <div className="row small" data-testid="decode-progress">
          <span>
            decoding {decoding.name} ({(decoding.bytes / 2 ** 20).toFixed(1)} MB) · file {decoding.index + 1} of {decoding.total}
          </span>
          <div className="progress" style={{ flex: '1 1 8rem', minWidth: '8rem' }} role="progressbar" aria-label="Opening files" aria-valuenow={Math.round((100 * decoding.index) / decoding.total)} aria-valuemin={0} aria-valuemax={100}>
            <div style={{ width: `${(100 * decoding.index) / decoding.total}%` }} />
          </div>
          <button type="button" onClick={cancelDecoding} data-testid="decode-cancel">
            Cancel
          </button>
        </div>
      )}
      <div className="row">
        <label className="button">
          Choose files
          <input
            type="file"
            multiple
            accept=".png,.jpg,.jpeg,.dcm,.dicom,image/png,image/jpeg,application/dicom"
            data-testid="file-input"
            onChange={async (e) => {
              const files = [...(e.target.files ?? [])];
              e.target.value = '';
              await addFiles(readPicked(files));
            }}
          />
        </label>
        <label className="button">
          Choose folder
          <input
            ref={(el) => {
              folderRef.current = el;
              el?.setAttribute('webkitdirectory', '');
            }}
            type="file"
            multiple
            data-testid="folder-input"
            onChange={async (e) => {
              const files = [...(e.target.files ?? [])];
              e.target.value = '';
              await addFiles(readPicked(files));
            }}
          />
        </label>
      </div>
    </div>
  );
}
