import { describe, expect, it } from 'vitest';
import { IdpBackoff } from '../../src/lib/idp/idp-backoff.ts';
import { IdpUnavailableError } from '../../src/lib/errors.ts';
import { parseRetryAfter } from '../../src/lib/idp/idp-network-client.ts';

describe('IdpBackoff', () => {
  it("holds a user for the IdP's Retry-After, then lets exactly one probe through", () => {
    const clock = { now: 1_000_000 };
    const backoff = new IdpBackoff(() => clock.now);
    expect(backoff.enter('ann')).toEqual({ allowed: true });
    backoff.failed('ann', new IdpUnavailableError(undefined, { retryAfterSeconds: 30 }));

    expect(backoff.enter('ann')).toEqual({ allowed: false, retryAfterSeconds: 30 });
    clock.now += 12_500;
    expect(backoff.enter('ann')).toEqual({ allowed: false, retryAfterSeconds: 18 });
    expect(backoff.enter('ben')).toEqual({ allowed: true });

    clock.now += 17_500;
    expect(backoff.enter('ann')).toEqual({ allowed: true });
    // The probe is out: the user's other requests still wait for it.
    expect(backoff.enter('ann')).toEqual({ allowed: false, retryAfterSeconds: 1 });
    backoff.succeeded('ann');
    expect(backoff.enter('ann')).toEqual({ allowed: true });
  });

  it('a probe that fails with a new Retry-After holds again; without one, lets requests through', () => {
    const clock = { now: 0 };
    const backoff = new IdpBackoff(() => clock.now);
    backoff.failed('ann', new IdpUnavailableError(undefined, { retryAfterSeconds: 5 }));
    clock.now += 5_000;
    expect(backoff.enter('ann')).toEqual({ allowed: true });
    backoff.failed('ann', new IdpUnavailableError(undefined, { retryAfterSeconds: 120 }));
    expect(backoff.enter('ann')).toEqual({ allowed: false, retryAfterSeconds: 120 });
    clock.now += 120_000;
    expect(backoff.enter('ann')).toEqual({ allowed: true });
    backoff.failed('ann', new IdpUnavailableError());
    expect(backoff.enter('ann')).toEqual({ allowed: true });
    expect(backoff.enter('ann')).toEqual({ allowed: true });
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates, caps at an hour, ignores anything else', () => {
    const now = Date.UTC(2026, 10, 30, 12, 0, 0);
    expect(parseRetryAfter('120', now)).toBe(120);
    expect(parseRetryAfter('Mon, 30 Nov 2026 12:00:45 GMT', now)).toBe(45);
    expect(parseRetryAfter('999999', now)).toBe(3600);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});
