/** The Models view's per-model variant choice, applied to a manifest entry. */
import type { Dtype, ModelEntry } from './manifest-types';

/** Per model: let the plan choose the variant ('auto', e.g. int8 on WASM when its card matches fp32) or force one. */
export type DtypeChoice = 'auto' | Dtype;

/**
 * The entry a request carries: with a dtype chosen in the Models view, only that variant (so the plan, the download
 * and the session all use it); 'auto' or a dtype the model lacks: the manifest's entry as is.
 */
export function withDtypeChoice(entry: ModelEntry, choice: DtypeChoice | undefined): ModelEntry {
  if (!choice || choice === 'auto' || !entry.variants[choice]) return entry;
  return { ...entry, variants: { [choice]: entry.variants[choice] } };
}
