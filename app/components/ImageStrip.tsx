import { useAppStore } from '../store';
import { RasterThumb } from './RasterThumb';

export function ImageStrip() {
  const images = useAppStore((s) => s.images);
  const currentId = useAppStore((s) => s.currentId);
  const select = useAppStore((s) => s.select);
  if (!images.length) return null;
  return (
    <ul className="image-strip" aria-label="Opened images">
      {images.map((i) => (
        <li key={i.id}>
          <button type="button" className={i.id === currentId ? 'current' : ''} onClick={() => select(i.id)} title={i.name}>
            <RasterThumb raster={i.thumbnail} alt={i.name} />
            <span className="name">{i.name}</span>
            {i.classification && <span className={`tag tag-${i.classification.predicted}`}>{i.classification.predicted}</span>}
          </button>
        </li>
      ))}
    </ul>
  );
}
