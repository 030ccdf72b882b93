// Part of `npm run build`: copies the dashboard's static files (served as they are) into dist/.
import { cpSync } from 'node:fs';

cpSync(new URL('../src/dashboard/', import.meta.url), new URL('../dist/dashboard/', import.meta.url), { recursive: true });
