import test from 'ava';
import { CredentialRedactor, REDACTED } from '../../src/protocol/credential-redactor.ts';

const basic = (user: string, password: string) => Buffer.from(`${user}:${password}`).toString('base64');

test('every string value of a credential, at any depth, is redacted in strings and keys at any depth', (t) => {
  const redactor = new CredentialRedactor([{ password: 'hunter2', nested: { apiKey: 'k-123', list: ['tok-9'] }, port: 443, tls: true }]);
  t.deepEqual(
    redactor.redact(['pw hunter2', { 'k-123': 'as a key', deep: [{ token: 'tok-9 and tok-9' }] }, 443, true, 'port 443 stays']),
    [`pw ${REDACTED}`, { [REDACTED]: 'as a key', deep: [{ token: `${REDACTED} and ${REDACTED}` }] }, 443, true, 'port 443 stays'],
  );
});

test('the Basic auth form of username, user or email with the password is redacted', (t) => {
  for (const field of ['username', 'user', 'email']) {
    const redactor = new CredentialRedactor([{ [field]: 'ann', password: 'pw' }]);
    t.is(redactor.redact(`Authorization: Basic ${basic('ann', 'pw')}`), `Authorization: Basic ${REDACTED}`, field);
  }
});

test('a longer secret that contains a shorter one is redacted whole', (t) => {
  const redactor = new CredentialRedactor([{ a: 'abc', b: 'abcdef' }]);
  t.is(redactor.redact('abcdef abc'), `${REDACTED} ${REDACTED}`);
});

test('credentials added as the run fetches them join those given at construction', (t) => {
  const redactor = new CredentialRedactor();
  t.true(redactor.empty);
  const line = { message: 'first one, second two' };
  t.is(redactor.redact(line), line, 'nothing to redact: the value itself comes back');
  redactor.add({ secret: 'one' });
  redactor.add({ secret: 'two' });
  t.false(redactor.empty);
  t.deepEqual(redactor.redact(line), { message: `first ${REDACTED}, second ${REDACTED}` });
  t.deepEqual(line, { message: 'first one, second two' }, 'the input is not changed');
});

test('a __proto__ key stays a plain key of the copy', (t) => {
  const redactor = new CredentialRedactor([{ password: 'pw' }]);
  const parsed = JSON.parse('{"__proto__": {"polluted": "pw"}}') as Record<string, unknown>;
  const copy = redactor.redact(parsed);
  t.deepEqual(Object.keys(copy), ['__proto__']);
  t.deepEqual(Object.getOwnPropertyDescriptor(copy, '__proto__')?.value, { polluted: REDACTED });
  t.is(({} as Record<string, unknown>)['polluted'], undefined);
});
