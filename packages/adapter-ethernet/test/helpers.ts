import { connect, type Socket } from 'node:net';
import { type EthernetDeviceConfig, validateConfig } from '@attache/core';

export { type LogEntry as Entry, recordingLogger } from '@attache/devkit';

/** An Ethernet device config with the schema's defaults applied. */
export function ethernetDevice(device: Record<string, unknown>): EthernetDeviceConfig {
  const config = validateConfig({
    version: 1,
    gateway: { id: 'gw-test' },
    devices: [{ id: 'mon-1', adapter: 'ethernet', ...device }],
  });
  return config.devices[0] as EthernetDeviceConfig;
}

/** Polls until `done()` holds (5 s at most). */
export async function until(done: () => boolean, what = 'condition'): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A connected TCP client. */
export function connectTo(port: number, host = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.once('error', reject);
    socket.once('connect', () => resolve(socket));
  });
}

/** Resolves when `socket` closes. */
export function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
}

/** A PCD-01 vital-signs message: SpO2, pulse, an NIBP with sys/dia/mean, and containment headers. */
export function vitalSigns(controlId: string, mrn = 'MRN-448812', name = 'SMITHERSON^JANE'): string {
  return [
    `MSH|^~\\&|VSP^080019FFFE134535^EUI-64|ICU|ATTACHE|HOSP|20260124120501||ORU^R01^ORU_R01|${controlId}|P|2.6|||NE|AL||8859/1|||PCD_DEC_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO`,
    `PID|||${mrn}^^^HOSP^MR~123-45-6789^^^SSA^SS||${name}||19470312|F|||12 ELM STREET^^SPRINGFIELD^IL^62701||555-0100`,
    'PV1||I|ICU^BED7^1||||1234^WELBY^MARCUS',
    'OBR|1|080019FFFE134535202601241205^VSP|080019FFFE134535202601241205^VSP|182777000^monitoring of patient^SCT|||20260124120500',
    'OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X|||||||080019FFFE0B4020^B40_GE',
    'OBX|2||69854^MDC_DEV_METER_PRESS_BLD_VMD^MDC|1.1.0.0|||||||X',
    'OBX|3||69855^MDC_DEV_METER_PRESS_BLD_CHAN^MDC|1.1.1.0|||||||X',
    'OBX|4|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.1.1.1|120|266016^MDC_DIM_MMHG^MDC|||||R|||20260124120455',
    'OBX|5|NM|150022^MDC_PRESS_BLD_NONINV_DIA^MDC|1.1.1.2|80|266016^MDC_DIM_MMHG^MDC|||||R|||20260124120455',
    'OBX|6|NM|150023^MDC_PRESS_BLD_NONINV_MEAN^MDC|1.1.1.3|93|266016^MDC_DIM_MMHG^MDC|||||R|||20260124120455',
    'OBX|7|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.2.1.1|97|262688^MDC_DIM_PERCENT^MDC|||||R',
    'OBX|8|NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC|1.2.1.2|72|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R',
    'OBX|9|NM|150344^MDC_TEMP^MDC|1.3.1.1|36.8|268192^MDC_DIM_DEGC^MDC|||||R',
    'OBX|10|NM|150344^MDC_TEMP^MDC|1.3.2.1|37.4|268192^MDC_DIM_DEGC^MDC|||||R',
  ].join('\r');
}
