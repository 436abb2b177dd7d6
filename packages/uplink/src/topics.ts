import type { UplinkConfig } from '@attache/core';
import { GatewayError } from '@attache/core';

/** The topics of one gateway (see docs/topics.md). */
export interface UplinkTopics {
  /** Where batches are published (with the Basic Ingest prefix when configured). */
  telemetry: string;
  events: string;
  state: string;
  /** The named shadow's topics, or null when `shadowName` is empty. */
  shadow: ShadowTopics | null;
}

/** The MQTT topics of a named Device Shadow (AWS IoT reserved topics). */
export interface ShadowTopics {
  update: string;
  updateAccepted: string;
  updateRejected: string;
  updateDelta: string;
  get: string;
  getAccepted: string;
  getRejected: string;
}

const maxSlashes = 7;
const maxTopicBytes = 256;

function checked(name: string, topic: string): string {
  const slashes = topic.split('/').length - 1;
  if (slashes > maxSlashes || Buffer.byteLength(topic) > maxTopicBytes) {
    throw new GatewayError(
      'ATTACHE_CONFIG_INVALID',
      `uplink.${name} "${topic}" has ${slashes} slashes / ${Buffer.byteLength(topic)} bytes: AWS IoT Core allows at most 7 and 256`,
    );
  }
  return topic;
}

/** The shadow topics of `thing`'s shadow `name`. */
export function shadowTopics(thing: string, name: string): ShadowTopics {
  const base = `$aws/things/${thing}/shadow/name/${name}`;
  return {
    update: `${base}/update`,
    updateAccepted: `${base}/update/accepted`,
    updateRejected: `${base}/update/rejected`,
    updateDelta: `${base}/update/delta`,
    get: `${base}/get`,
    getAccepted: `${base}/get/accepted`,
    getRejected: `${base}/get/rejected`,
  };
}

/**
 * Resolves the configured topics for `gatewayId`. Throws `ATTACHE_CONFIG_INVALID` when a topic has
 * more than 7 slashes or 256 bytes (AWS IoT Core's limits; the Basic Ingest prefix does not count).
 */
export function uplinkTopics(gatewayId: string, config: UplinkConfig): UplinkTopics {
  const fill = (topic: string) => topic.replaceAll('{gatewayId}', gatewayId);
  const telemetry = checked('topic', fill(config.topic));
  const rule = config.basicIngestRule ?? '';
  return {
    telemetry: rule === '' ? telemetry : `$aws/rules/${rule}/${telemetry}`,
    events: checked('eventsTopic', fill(config.eventsTopic)),
    state: checked('stateTopic', fill(config.stateTopic)),
    shadow: config.shadowName ? shadowTopics(gatewayId, config.shadowName) : null,
  };
}
