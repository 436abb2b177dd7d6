/**
 * Why a connection to a Modbus bus failed, in the technician's words, from the system's error:
 * the errno of a TCP connect or name lookup, or the text serialport gives for a serial device.
 */
export function connectFailure(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused: nothing listens on that port (is Modbus TCP enabled on the device, and the port right?)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'unknown host: the name does not resolve (check the spelling, or use the IP address)';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'no route to the host (check the network, the address and the cable)';
    case 'ETIMEDOUT':
      return 'no answer to the connection (a firewall, or the wrong address)';
  }
  if (/No such file or directory/i.test(message))
    return 'no such device (is the adapter plugged in? attache ports lists them)';
  if (/Permission denied/i.test(message))
    return 'permission denied (run as root or as a member of the dialout group)';
  if (/Cannot lock port|Resource temporarily unavailable|busy/i.test(message)) {
    return 'the port is in use by another process (the gateway? systemctl stop attache)';
  }
  if (/Inappropriate ioctl/i.test(message)) return 'not a serial device';
  return message;
}
