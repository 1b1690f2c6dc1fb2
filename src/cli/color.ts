/**
 * citty colours its help unconditionally; escape codes in a pipe or a log file
 * are noise. Imported before citty, so the choice is made before it loads.
 */
if (!process.stdout.isTTY && process.env.NO_COLOR === undefined) process.env.NO_COLOR = "1";

export {};
