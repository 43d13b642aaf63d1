import test from 'ava';
import { runLanes } from './helpers.ts';

test('lanes server with a postgres URL that does not parse exits 2 with one line that does not repeat it', async (t) => {
  const result = await runLanes(['server', '--port', '0', '--db', 'postgres://lanes:hunter2@/'], { WORKER_SECRET: 'x' });
  t.is(result.code, 2);
  t.regex(result.stderr.trim(), /^lanes: invalid --db\/LANES_DB \(flag --db\): is not a postgres:\/\/USER/);
  t.is(result.stderr.trim().split('\n').length, 1);
  t.false(result.stderr.includes('hunter2'));
});

test('lanes server with a bad --retain-days exits 2 naming it and the value', async (t) => {
  for (const bad of ['0', '-3', 'week', '1e9']) {
    const result = await runLanes(['server', '--port', '0', '--db', ':memory:', '--retain-days', bad], { WORKER_SECRET: 'x' });
    t.is(result.code, 2, bad);
    t.regex(result.stderr.trim(), new RegExp(`^lanes: invalid --retain-days/LANES_RETAIN_DAYS \\(flag --retain-days\\): "${bad}" must be a positive number of days$`));
  }
});
