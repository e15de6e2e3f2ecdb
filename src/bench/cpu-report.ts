// Preloaded (`node --import`) into a process the benchmark times: when the process exits, it writes
// its own CPU time and peak RSS as one JSON line to file descriptor 3, which the benchmark opened as
// a pipe. The process under test is otherwise untouched (stdout and stderr are its own).
import { writeSync } from 'node:fs';

process.on('exit', () => {
  const cpu = process.cpuUsage();
  try {
    writeSync(3, `${JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000, peakRssMB: process.resourceUsage().maxRSS / 1024 })}\n`);
  } catch {
    /* fd 3 not open: run outside the benchmark */
  }
});
