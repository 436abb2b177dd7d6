// Page buffers kept for reuse between pages: a buffer taken is never handed out again until given
// back, a large enough free one is reused, and only a few are kept.
import t from 'tap';
import { PageBuffers } from '../src/sealed-store.js';

t.test('a free buffer large enough is reused; others are new, in 16 KiB steps', async (t) => {
  const buffers = new PageBuffers();
  const first = buffers.take(100_000);
  t.equal(first.length, 114_688, 'rounded up to 7 × 16 KiB');
  const second = buffers.take(100_000);
  t.not(second, first, 'one taken is not handed out again');
  buffers.give(first);
  t.equal(buffers.take(110_000), first, 'given back, it takes the next page that fits');
  buffers.give(second);
  t.not(buffers.take(120_000), second, 'too small for this one: a new buffer');
  t.equal(buffers.take(1), second, 'but it takes a smaller page');
});

t.test('at most four free buffers are kept', async (t) => {
  const buffers = new PageBuffers();
  const taken = Array.from({ length: 6 }, () => buffers.take(1000));
  for (const buffer of taken) buffers.give(buffer);
  const again = Array.from({ length: 6 }, () => buffers.take(1000));
  t.equal(again.filter((b) => taken.includes(b)).length, 4, 'four reused, two new');
});
