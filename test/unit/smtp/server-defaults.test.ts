/** The smtpd library's own defaults for the optional limits are the config's defaults. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LIMITS } from '../../../src/config/defaults.ts';
import { withDefaults } from '../../../src/smtp/server/server.ts';

test('withDefaults(config defaults minus the optional keys) gives back the config defaults', () => {
  const { maxSubmissionConnections, junkCommandLimit, dataDeadlineMs, stressTimeoutMs, stressThreshold, ...required } =
    DEFAULT_LIMITS;
  const l = withDefaults(required);
  assert.deepEqual(
    {
      maxSubmissionConnections: l.maxSubmissionConnections,
      junkCommandLimit: l.junkCommandLimit,
      dataDeadlineMs: l.dataDeadlineMs,
      stressTimeoutMs: l.stressTimeoutMs,
      stressThreshold: l.stressThreshold,
    },
    { maxSubmissionConnections, junkCommandLimit, dataDeadlineMs, stressTimeoutMs, stressThreshold },
  );
});
