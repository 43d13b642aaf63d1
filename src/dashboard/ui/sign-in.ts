/** The sign-in form: one labelled password field for the API token. */
import { h } from './dom.ts';

export function signInView(problem: string | null, submit: (token: string) => void): HTMLElement {
  return h(
    'section',
    { 'aria-labelledby': 'signin-title', class: 'signin' },
    h('h2', { id: 'signin-title' }, 'Sign in'),
    h('p', {}, 'This server asks for its API token (', h('code', {}, '--api-token'), ' or ', h('code', {}, 'LANES_API_TOKEN'), '). It is kept for this browser tab only.'),
    h(
      'form',
      {
        onsubmit: (event: Event) => {
          event.preventDefault();
          const data = new FormData(event.currentTarget as HTMLFormElement);
          submit(String(data.get('token') ?? '').trim());
        },
      },
      h('label', { for: 'token' }, 'API token'),
      h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'current-password', required: true, maxlength: 4096, 'data-key': 'token', 'aria-describedby': problem === null ? null : 'signin-problem' }),
      h('button', { type: 'submit' }, 'Sign in'),
    ),
    problem === null ? null : h('p', { id: 'signin-problem', class: 'error', role: 'alert' }, problem),
  );
}
