/** Exit codes of the `lanes` command. */
export const EXIT_OK = 0;
/** The command ran and something failed (a run that did not succeed, a crash). */
export const EXIT_FAILURE = 1;
/** Bad usage or configuration: nothing was started. */
export const EXIT_USAGE = 2;
