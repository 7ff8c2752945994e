import { chosenModel, resultKey, useAppStore } from '../store';
import { FileName } from './FileName';
import { RasterThumb } from './RasterThumb';

export function ImageStrip() {
  const images = useAppStore((s) => s.images);
  const currentId = useAppStore((s) => s.currentId);
  const select = useAppStore((s) => s.select);
  const entry = useAppStore((s) => chosenModel(s, 'classifier'));
  const settings = useAppStore((s) => s.settings);
  if (!images.length) return null;
  return (
    <ul className="image-strip" aria-label="Opened images">
      {images.map((i) => {
        // The tag only for the chosen classifier's result on the frame shown (never another model's).
        const c = entry && i.classification?.key === resultKey({ settings }, i, entry) ? i.classification : undefined;
        return (
          <li key={i.id}>
            <button type="button" className={i.id === currentId ? 'current' : ''} onClick={() => select(i.id)} title={i.path || i.name}>
              <RasterThumb raster={i.thumbnail} alt={i.name} />
              <span className="name">
                <FileName name={i.name} title={i.path || i.name} />
              </span>
              {/* A flagged image shows OOD, not a coloured label (issue 23: the classification is not the headline). */}
              {c &&
                (c.ood?.ood ? (
                  <span className="tag tag-ood" title={`out of distribution; the model says ${c.predicted}`} data-testid="strip-ood">
                    OOD
                  </span>
                ) : (
                  <span className={`tag tag-${c.predicted}`}>{c.predicted}</span>
                ))}
            </button>
          </li>
        );
      })}
    </ul>
  );
}
