/** Types of scripts/hub-server.mjs (a local Hugging Face Hub stand-in for tests; see its header). */
export interface HubServerOptions {
  /** Folder laid out ROOT/OWNER/NAME/... (tests/.hub-fixtures). */
  root: string;
  /** 0: any free port. Default 4199. */
  port?: number;
  host?: string;
  /** While this file exists every request is dropped (a network error). */
  offlineFile?: string;
  /** OWNER/NAME/PATH served with one byte flipped; the metadata keeps the true sha256. */
  corrupt?: string[];
  /** OWNER/NAME/PATH answered 404 EntryNotFound and not listed. */
  hide?: string[];
  /** Resolve of an LFS file answers 302 to /_lfs/{owner}/{name}/{sha256}/{basename} (the Hub's CDN redirect). */
  redirectLfs?: boolean;
}
export interface HubServerState {
  offline: boolean;
  corrupt: Set<string>;
  hide: Set<string>;
  redirectLfs: boolean;
  requests: { method: string; path: string; status: number; bytes: number }[];
}
export interface RunningHubServer {
  server: import('node:http').Server;
  /** http://HOST:PORT */
  url: string;
  state: HubServerState;
  close(): Promise<void>;
}
export function createHubServer(opts: HubServerOptions): Promise<RunningHubServer>;
