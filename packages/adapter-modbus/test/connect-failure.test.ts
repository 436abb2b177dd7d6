import t from 'tap';
import { connectFailure } from '../src/connect-failure.js';

const errno = (code: string) => Object.assign(new Error(`connect ${code}`), { code });

t.test('a failed connection is named by its cause', async (t) => {
  t.match(connectFailure(errno('ECONNREFUSED')), /^connection refused/);
  t.match(connectFailure(errno('ENOTFOUND')), /^unknown host/);
  t.match(connectFailure(errno('EAI_AGAIN')), /^unknown host/);
  t.match(connectFailure(errno('EHOSTUNREACH')), /^no route to the host/);
  t.match(connectFailure(errno('ENETUNREACH')), /^no route to the host/);
  t.match(connectFailure(errno('ETIMEDOUT')), /^no answer to the connection/);
  t.match(
    connectFailure(new Error('Error: No such file or directory, cannot open /dev/x')),
    /^no such device/,
  );
  t.match(connectFailure(new Error('Error: Permission denied, cannot open /dev/x')), /^permission denied/);
  t.match(
    connectFailure(new Error('Error Resource temporarily unavailable Cannot lock port')),
    /in use by another/,
  );
  t.match(connectFailure(new Error('Inappropriate ioctl for device')), /^not a serial device/);
  t.equal(connectFailure(new Error('something else')), 'something else', 'anything else: the system says it');
  t.equal(connectFailure('a string'), 'a string');
});
