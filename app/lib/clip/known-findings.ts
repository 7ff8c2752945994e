import type { ModelEntry } from '../models/manifest-types';

/**
 * What a trained CLIP model was taught, from its manifest entry (config.known_findings, written by export-scripts'
 * clip_export.py from the caption grammar): e.g. ['normal', 'pneumonia', …]. Null when the entry does not say (a
 * fixture or a general-purpose model). Prompts about anything else (another body part, another finding) get a
 * softmax over labels all the same, so the panel warns that such scores are meaningless.
 */
export function knownFindings(entry: Pick<ModelEntry, 'config'> | undefined): string[] | null {
  const k = entry?.config?.known_findings;
  if (!Array.isArray(k) || !k.length || !k.every((x) => typeof x === 'string')) return null;
  return k as string[];
}
