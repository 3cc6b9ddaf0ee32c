import { describe, expect, it } from 'vitest';
import { messagePageResponse } from '../../src/lib/web/html-page.ts';

function render(link: { href: string; text: string }, retryAfterSeconds?: number) {
  const response = messagePageResponse({
    status: 400,
    title: 'Sign-in did not complete <now>',
    message: 'It "failed" & stopped.',
    link,
    ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
  });
  return {
    response,
    body: response.body as string,
    headers: response.headers as Record<string, string>,
  };
}

describe('message pages (sign-in failures)', () => {
  it("use the page's stylesheet and icon, which their CSP allows, and nothing inline", () => {
    const { response, body, headers } = render({
      href: '/auth/signin?returnTo=%2F',
      text: 'Sign in again',
    });
    expect(response.status).toBe(400);
    expect(body).toContain('<link rel="stylesheet" href="/static/app.css">');
    expect(body).toContain('<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">');
    expect(body).not.toMatch(/<script|<style|\sstyle=/i);
    const csp = headers['Content-Security-Policy'];
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("img-src 'self'");
    expect(csp).not.toMatch(/script-src|unsafe-inline/);
    expect(headers['Content-Type']).toBe('text/html; charset=utf-8');
  });

  it('link home besides their own next step, and escape every text', () => {
    const { body } = render({ href: '/auth/signin?returnTo=%2F&x="y"', text: 'Sign in <again>' });
    expect(body).toContain('<a href="/">Back to the to-do list</a>');
    expect(body).toContain(
      'href="/auth/signin?returnTo=%2F&#38;x=&#34;y&#34;">Sign in &#60;again&#62;</a>',
    );
    expect(body).toContain('<h1>Sign-in did not complete &#60;now&#62;</h1>');
    expect(body).toContain('It &#34;failed&#34; &#38; stopped.');
  });

  it('do not link home twice when the next step is the home page', () => {
    const { body } = render({ href: '/', text: 'Back to the to-do list' });
    expect(body.match(/href="\/"/g)).toHaveLength(2); // the header's name and the next step
  });

  it('link home to another origin when told to', () => {
    const body = messagePageResponse({
      status: 400,
      title: 'Sign in at http://localhost:7071',
      message: 'Use the other host.',
      link: { href: 'http://localhost:7071/auth/signin?returnTo=%2F', text: 'Sign in there' },
      home: 'http://localhost:7071/',
    }).body as string;
    expect(body).toContain('<a class="brand" href="http://localhost:7071/">To-do list</a>');
    expect(body).toContain('<a href="http://localhost:7071/">Back to the to-do list</a>');
    expect(body).not.toContain('href="/"');
  });

  it('pass Retry-After on when given', () => {
    expect(render({ href: '/', text: 'Home' }, 5).headers['Retry-After']).toBe('5');
    expect(render({ href: '/', text: 'Home' }).headers['Retry-After']).toBeUndefined();
  });
});
