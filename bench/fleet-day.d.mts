/** What runFleetDay found: each list empty when its check holds. */
export interface FleetDayFindings {
  /** Records delivered twice by the consumer. */
  duplicates: string[];
  /** Records delivered out of seq order within a message. */
  order: string[];
  /** Messages the consumer refused (error codes). */
  refused: string[];
  /** Records neither delivered nor reported dropped. */
  missing: string[];
  /** Records delivered with other content than produced, or both delivered and reported dropped. */
  wrong: string[];
  /** Gateways with more seqs reported dropped than they said they dropped, or with gaps left open. */
  unexplained: string[];
  /** Records of an unsynchronized clock left without a corrected time, or corrected wrongly. */
  clock: string[];
}

export interface FleetDayResult {
  produced: number;
  /** What the gateways said they dropped. */
  dropped: number;
  /** Seqs the consumer reported dropped: fewer when a cache dropped records the broker already had. */
  reportedDropped: number;
  delivered: number;
  handled: number;
  cpuSeconds: number;
  gaps: number;
  outcomes: Record<string, number>;
  /** Windows still running when the broker was killed. */
  inFlightAtRestart: number;
  stateBytes: number;
  findings: FleetDayFindings;
}

export function runFleetDay(options?: {
  gateways?: number;
  records?: number;
  parallel?: number;
  log?: (message: string) => void;
}): Promise<FleetDayResult>;
