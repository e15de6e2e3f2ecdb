// The data a report page carries (report/html.ts writes it, report/html-client.ts reads it in the
// browser). Cells are one character each, row-major over `rows` × `cols`, one string per port:
// `y` allowed, `n` denied, `u` depends on the pod's IP, `-` the endpoint is absent on that side
// (diff). Audit marks: ` ` none, `!` an audited policy would deny it once enforced, `+` would allow.

export interface ReportEndpoint {
  key: string;
  ns: string;
  /** Declared container ports, `80/TCP`; absent when unknown (measured matrices). */
  ports?: string[];
  /** Diff: present only after (`added`) or only before (`removed`). */
  status?: 'added' | 'removed';
}

/** A Plan as JSON: `podByIP` as entries. */
export type EncodedPlan = Record<string, unknown> & { podByIP: [string, string][] };

export interface ReportData {
  title: string;
  mode: 'matrix' | 'diff' | 'measured';
  /** One line under the title (counts, the diff's summary). */
  summary: string;
  ports: string[];
  endpoints: ReportEndpoint[];
  /** Indexes into endpoints, sorted by namespace then key. */
  rows: number[];
  cols: number[];
  /** Per port; the state after, for a diff. */
  cells: string[];
  /** Diff: per port, the state before. */
  before?: string[];
  /** Per port, when audited policies exist. */
  audit?: string[];
  audited?: string[];
  /** The plans cells are explained from in the page (by podwall's own engine). */
  plan?: EncodedPlan;
  beforePlan?: EncodedPlan;
}
