/** Runs /usr/bin/python3 (Debian's, with python3-grpcio) without blocking the event loop: servers under test live in this process. */
import { spawn } from "node:child_process";

export const PYTHON = "/usr/bin/python3";
export const INSTALL_HINT = "run `apt-get install -y python3-grpcio python3-grpc-tools` (CI installs them)";

export interface PythonRun {
  code: number | null;
  output: string;
}

export function runPython(args: string[], timeoutMs: number): Promise<PythonRun> {
  return new Promise((resolve, reject) => {
    // PYTHONPATH / PYTHONHOME from a pyenv shell would shadow the system site-packages that hold grpc.
    const { PYTHONPATH: _path, PYTHONHOME: _home, ...env } = process.env;
    const child = spawn(PYTHON, args, { env: { ...env, PYTHONNOUSERSITE: "1" }, timeout: timeoutMs });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", (err) => reject(new Error(`cannot run ${PYTHON}: ${err.message}; ${INSTALL_HINT}`)));
    child.on("close", (code) => resolve({ code, output }));
  });
}
