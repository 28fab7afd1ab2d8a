/** Where a command writes: results to stdout, progress and errors to stderr (tests capture both). */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}
