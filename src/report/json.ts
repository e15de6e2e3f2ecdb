// The matrix JSON (docs/cli.md), written out row by row: a matrix of 1,000 endpoints over 3 ports
// is 3 million cells, which as one object and one JSON.stringify costs seconds and a few hundred MB.
// One endpoint per line in `pods`, one row per line in `allowed`: valid JSON, readable, diffable.
// Written as bytes in chunks of about a megabyte, so the CLI can wait for a slow reader between them.
import type { MatrixView } from '../sim/matrix.js';

const CHUNK = 1 << 20;

/** Bytes gathered into chunks of about a megabyte (a row of 1,000 cells is ~55 KB). */
class ChunkWriter {
  private buf = Buffer.allocUnsafe(CHUNK);
  private at = 0;
  private readonly done: Uint8Array[] = [];

  text(s: string): void {
    this.bytes(Buffer.from(s));
  }

  bytes(b: Uint8Array): void {
    if (this.at + b.length > CHUNK) this.flush();
    if (b.length > CHUNK) {
      this.done.push(b);
      return;
    }
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  flush(): void {
    if (this.at === 0) return;
    this.done.push(this.buf.subarray(0, this.at));
    this.buf = Buffer.allocUnsafe(CHUNK);
    this.at = 0;
  }

  /** The chunks completed so far (each handed out once). */
  take(): Uint8Array[] {
    return this.done.splice(0);
  }
}

/** The matrix JSON as UTF-8 chunks, computed row by row as they are taken. */
export function* matrixJsonChunks(view: MatrixView): Generator<Uint8Array> {
  const w = new ChunkWriter();
  const names = view.names();
  w.text(`{\n  "pods": [${names.length === 0 ? '' : `\n${names.map((n) => `    ${JSON.stringify(n)}`).join(',\n')}\n  `}],\n  "probes": [`);
  const colKeys = view.cols.map((j) => JSON.stringify(view.key(j)));
  // Every column's `"key": value` for each cell code (CELL_DENIED, CELL_ALLOWED, CELL_DEPENDS), as
  // bytes: a row is then a run of copies, no string building or encoding per cell.
  const texts = colKeys.flatMap((k, c) => [`${k}: false`, `${k}: true`, `${k}: null`].map((t) => Buffer.from(c === 0 ? t : `, ${t}`)));
  const codes = new Uint8Array(view.cols.length);
  for (const [pi, port] of view.ports.entries()) {
    w.text(`${pi === 0 ? '' : ','}\n    {\n      "port": ${port.port},\n      "protocol": ${JSON.stringify(port.protocol)},\n      "allowed": {`);
    for (const [ri, i] of view.rows.entries()) {
      view.reach.rowAt(i, view.cols, pi, codes);
      w.text(`${ri === 0 ? '' : ','}\n        ${JSON.stringify(view.key(i))}: {`);
      for (let c = 0; c < codes.length; c++) w.bytes(texts[c * 3 + codes[c]!]!);
      w.text('}');
      yield* w.take();
    }
    w.text(`${view.rows.length > 0 ? '\n      ' : ''}}`);
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
      if (rows.length > 0) w.text(`,\n      "audit": {\n${rows.join(',\n')}\n      }`);
    }
    w.text('\n    }');
  }
  const audited = view.audited();
  w.text(`${view.ports.length > 0 ? '\n  ' : ''}]${audited.length > 0 ? `,\n  "audited": ${JSON.stringify(audited)}` : ''}\n}\n`);
  w.flush();
  yield* w.take();
}

export function matrixJsonText(view: MatrixView): string {
  return Buffer.concat([...matrixJsonChunks(view)]).toString('utf8');
}
