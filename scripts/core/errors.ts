// Errors the core raises (its own module, so that config.ts and render.ts need not import each other).

/** A configuration problem. `problems` holds one line per problem; `message` lists them all. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string | string[]) {
    const list = Array.isArray(problems) ? problems : [problems];
    super(
      list.length === 1
        ? `invalid configuration: ${list[0]}`
        : `invalid configuration (${list.length} problems):\n${list.map((p) => `  - ${p}`).join('\n')}`,
    );
    this.name = 'ConfigError';
    this.problems = list;
  }
}
