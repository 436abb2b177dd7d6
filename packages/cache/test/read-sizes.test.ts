import t from 'tap';
import { ReadSizes } from '../src/read-sizes.js';

t.test('sizes are taken once, and the oldest are forgotten past the capacity', async (t) => {
  const sizes = new ReadSizes(2);
  sizes.note(1, 100);
  sizes.note(2, 200);
  sizes.note(3, 300);
  t.equal(sizes.size, 2);
  t.equal(sizes.take(1), undefined, 'the oldest was forgotten');
  t.equal(sizes.take(3), 300);
  t.equal(sizes.take(3), undefined, 'a size is taken once');
  sizes.clear();
  t.equal(sizes.take(2), undefined, 'cleared');
});
