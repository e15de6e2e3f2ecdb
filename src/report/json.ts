// The matrix JSON (docs/cli.md), written out row by row: a matrix of 1,000 endpoints over 3 ports
// is 3 million cells, which as one object and one JSON.stringify costs seconds and a few hundred MB.
// One endpoint per line in `pods`, one row per line in `allowed`: valid JSON, readable, diffable.
import type { MatrixView } from '../sim/matrix.js';

const cellText = (v: boolean | null): string => (v === null ? 'null' : v ? 'true' : 'false');

export function* matrixJsonChunks(view: MatrixView): Generator<string> {
  const names = view.names();
  yield `{\n  "pods": [${names.length === 0 ? '' : `\n${names.map((n) => `    ${JSON.stringify(n)}`).join(',\n')}\n  `}],\n  "probes": [`;
  const colKeys = view.cols.map((j) => JSON.stringify(view.key(j)));
  for (const [pi, port] of view.ports.entries()) {
    yield `${pi === 0 ? '' : ','}\n    {\n      "port": ${port.port},\n      "protocol": ${JSON.stringify(port.protocol)},\n      "allowed": {`;
    for (const [ri, i] of view.rows.entries()) {
      const cells = view.cols.map((j, ci) => `${colKeys[ci]}: ${cellText(view.cell(i, j, pi))}`);
      yield `${ri === 0 ? '' : ','}\n        ${JSON.stringify(view.key(i))}: {${cells.join(', ')}}`;
    }
    yield `${view.rows.length > 0 ? '\n      ' : ''}}`;
    // Audited policies: only the cells they would change once enforced (as MatrixView.json()).
    if (view.enforced) {
      const rows: string[] = [];
      for (const i of view.rows) {
        const cells: string[] = [];
        view.cols.forEach((j, ci) => {
          const change = view.auditChange(i, j, pi);
          if (change) cells.push(`${colKeys[ci]}: ${JSON.stringify(change)}`);
        });
        if (cells.length > 0) rows.push(`        ${JSON.stringify(view.key(i))}: {${cells.join(', ')}}`);
      }
      if (rows.length > 0) yield `,\n      "audit": {\n${rows.join(',\n')}\n      }`;
    }
    yield '\n    }';
  }
  const audited = view.audited();
  yield `${view.ports.length > 0 ? '\n  ' : ''}]${audited.length > 0 ? `,\n  "audited": ${JSON.stringify(audited)}` : ''}\n}\n`;
}

export function matrixJsonText(view: MatrixView): string {
  return [...matrixJsonChunks(view)].join('');
}
