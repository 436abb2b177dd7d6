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

t.test('a remove marks its seqs: a read that started before it cannot note them again', async (t) => {
  const sizes = new ReadSizes(10);
  sizes.note(4, 40);
  t.equal(sizes.take(4), 40);
  sizes.note(4, 40);
  t.notOk(sizes.has(4), 'a size noted after the remove (from an older snapshot) is not kept');
  t.equal(sizes.take(5), undefined, 'a seq never noted is marked too');
  sizes.note(5, 50);
  t.notOk(sizes.has(5));
  sizes.note(15, 150);
  t.ok(sizes.has(15), 'a later seq takes the slot');
  sizes.note(5, 50);
  t.notOk(sizes.has(5), 'an earlier seq does not take it back');
  t.equal(sizes.take(5), undefined, 'nor does its remove');
  t.equal(sizes.take(15), 150);
  t.equal(sizes.size, 0);
});

t.test('a read that started before a clear notes nothing', async (t) => {
  const sizes = new ReadSizes(10);
  const generation = sizes.generation;
  sizes.note(1, 10, generation);
  sizes.clear();
  sizes.note(2, 20, generation);
  t.notOk(sizes.has(2), 'noted by a read older than the clear');
  t.notOk(sizes.has(1), 'cleared');
  sizes.note(2, 20, sizes.generation);
  t.ok(sizes.has(2));
  t.equal(sizes.size, 1);
});

t.test('removing a seq forgets the earlier seq its slot held', async (t) => {
  const sizes = new ReadSizes(10);
  sizes.note(3, 30);
  t.equal(sizes.take(13), undefined, 'seq 13 was never noted');
  t.notOk(sizes.has(3), 'seq 3, in the same slot, is forgotten');
  t.equal(sizes.size, 0);
});
