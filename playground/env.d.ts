/** Set by vite.config.ts: whether the trainer's modules (protocol.ts, TRAINER_FILES) are in this build. */
declare const __CELLC_TRAINER__: boolean;
