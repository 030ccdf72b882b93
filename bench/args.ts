// Command-line flags of `npm run bench`: --quick, --only/--skip workload names, --out, --list.
// Pure: argv in, options out.
import { parseArgs } from 'node:util';

export interface BenchArgs {
  quick: boolean;
  only: string[] | undefined;
  skip: string[];
  out: string | undefined;
  list: boolean;
  help: boolean;
}

const list = (v: unknown): string[] =>
  typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : [];

export function parseBenchArgs(argv: string[]): BenchArgs {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      quick: { type: 'boolean' },
      only: { type: 'string' },
      skip: { type: 'string' },
      out: { type: 'string' },
      list: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  return {
    quick: values.quick === true,
    only: values.only === undefined ? undefined : list(values.only),
    skip: list(values.skip),
    out: values.out,
    list: values.list === true,
    help: values.help === true,
  };
}

export const BENCH_HELP = `npm run bench -- [flags]

  --quick            short smoke run (< 60 s); results go to bench/out/results-quick.json
  --only a,b         run only these workloads (see --list)
  --skip a,b         run all but these workloads
  --out FILE         where to write the JSON results (default bench/results.json, full mode)
  --list             list the workloads and exit
`;
