/** The trainer's modules (issue 9), which train.worker.ts loads (its glob repeats them: it must be literal). */
export const TRAINER_FILES = [
  "runtime/train/network.ts",
  "runtime/train/trainer.ts",
  "runtime/tasks/index.ts",
];
