import type { ModelEntry } from '../models/manifest-types';
import type { PromptSet } from './types';

/**
 * A CLIP model's default prompt sets from its manifest entry: config.default_prompts as `{label: [prompts]}` (or
 * `{label: prompt}`, or a PromptSet[]); two generic NORMAL/PNEUMONIA prompts when the entry has none.
 */
export function defaultPromptSets(entry: ModelEntry | undefined): PromptSet[] {
  const d = entry?.config?.default_prompts;
  if (Array.isArray(d)) return (d as PromptSet[]).map((x) => ({ label: x.label, prompts: [...x.prompts] }));
  if (d && typeof d === 'object') return Object.entries(d as Record<string, string[] | string>).map(([label, p]) => ({ label, prompts: Array.isArray(p) ? [...p] : [p] }));
  return [
    { label: 'NORMAL', prompts: ['a normal chest X-ray'] },
    { label: 'PNEUMONIA', prompts: ['a chest X-ray showing pneumonia'] },
  ];
}

/** Prompt sets with labels and prompts trimmed, empty prompts and labels without a prompt dropped. */
export function usablePromptSets(sets: PromptSet[]): PromptSet[] {
  return sets
    .map((s) => ({ label: s.label.trim(), prompts: s.prompts.map((p) => p.trim()).filter(Boolean) }))
    .filter((s) => s.label && s.prompts.length);
}
