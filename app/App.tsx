import { useEffect, useState } from 'react';
import { useAppStore } from './store';
import { AlertRegion } from './components/AlertRegion';
import { BatchView } from './components/BatchView';
import { ClassificationPanel } from './components/ClassificationPanel';
import { DicomInfo } from './components/DicomInfo';
import { DropZone } from './components/DropZone';
import { GalleryView } from './components/GalleryView';
import { ImageStrip } from './components/ImageStrip';
import { DownloadProgressBar, ModelManager } from './components/ModelManager';
import { RuntimeStatus } from './components/RuntimeStatus';
import { Viewer } from './components/Viewer';
import { ZeroShotPanel } from './components/ZeroShotPanel';
import { SegmentView } from './components/SegmentView';

type Tab = 'viewer' | 'segment' | 'batch' | 'generate' | 'models';

export function App() {
  const init = useAppStore((s) => s.init);
  const manifestError = useAppStore((s) => s.manifestError);
  const [tab, setTab] = useState<Tab>('viewer');
  useEffect(() => {
    void init();
  }, [init]);

  return (
    <div className="app">
      <header className="app-header">
        <h1>
          CXR Studio <span className="muted small">on-device chest X-ray research · not for clinical use</span>
        </h1>
        <nav className="tabs" aria-label="Sections">
          {(['viewer', 'segment', 'batch', 'generate', 'models'] as Tab[]).map((t) => (
            <button key={t} type="button" className={tab === t ? 'active' : ''} aria-pressed={tab === t} onClick={() => setTab(t)}>
              {t === 'viewer' ? 'Viewer' : t === 'segment' ? 'Segment' : t === 'batch' ? 'Batch' : t === 'generate' ? 'Generate' : 'Models'}
            </button>
          ))}
        </nav>
      </header>
      <AlertRegion />
      {manifestError && <p className="error-text banner">{manifestError}</p>}
      <main>
        {tab === 'viewer' && (
          <div className="viewer-layout">
            <div className="left">
              <DropZone />
              <ImageStrip />
            </div>
            <Viewer />
            <div className="right">
              <DownloadProgressBar transient />
              <ClassificationPanel />
              <ZeroShotPanel />
              <DicomInfo />
              <RuntimeStatus />
            </div>
          </div>
        )}
        {tab === 'segment' && <SegmentView />}
        {tab === 'batch' && <BatchView />}
        {tab === 'generate' && <GalleryView />}
        {tab === 'models' && <ModelManager />}
      </main>
    </div>
  );
}
