// Minimal typing of the dcmjs API this app uses (dcmjs ships no .d.ts).
declare module 'dcmjs' {
  export namespace data {
    class DicomDict {
      constructor(meta: Record<string, unknown>);
      dict: Record<string, unknown>;
      meta: Record<string, unknown>;
      write(options?: Record<string, unknown>): ArrayBuffer;
    }
    const DicomMessage: {
      readFile(buffer: ArrayBuffer, options?: Record<string, unknown>): { dict: Record<string, unknown>; meta: Record<string, unknown> };
    };
    const DicomMetaDictionary: {
      naturalizeDataset(ds: Record<string, unknown>): Record<string, unknown>;
      denaturalizeDataset(ds: Record<string, unknown>): Record<string, unknown>;
      uid(): string;
      date(): string;
      time(): string;
    };
  }
  const dcmjs: { data: typeof data };
  export default dcmjs;
}
