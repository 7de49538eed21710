/**
 * Names of allocated PSIDs (IEEE 1609.12 / IEEE RA public PSID listing; ITS-AID in ISO TS 17419), for display.
 * Short names first, the registry description after the dash.
 */
export const PSID_NAMES: ReadonlyMap<bigint, string> = new Map<bigint, string>([
  [0x00n, 'system (ISO 15628)'],
  [0x01n, 'electronic fee collection'],
  [0x02n, 'freight fleet management'],
  [0x03n, 'public transport'],
  [0x04n, 'traffic traveller information'],
  [0x05n, 'traffic control'],
  [0x06n, 'parking management'],
  [0x07n, 'geographic road database'],
  [0x08n, 'medium range pre-information'],
  [0x09n, 'man-machine interface'],
  [0x0an, 'intersystem interface'],
  [0x0bn, 'automatic vehicle identification'],
  [0x0cn, 'emergency warning'],
  [0x0dn, 'private (ISO 15628)'],
  [0x0en, 'multi-purpose payment'],
  [0x0fn, 'DSRC resource manager'],
  [0x10n, 'after-theft systems'],
  [0x11n, 'cruise-assist highway system'],
  [0x12n, 'multi-purpose information system'],
  [0x13n, 'multi-mobile information system'],
  [0x14n, 'EFC compliance check communication'],
  [0x15n, 'EFC localisation augmentation communication'],
  [0x20n, 'BSM - vehicle-to-vehicle safety and awareness'],
  [0x21n, 'limited sensor vehicle-to-vehicle safety and awareness'],
  [0x22n, 'tracked (rail) vehicle safety and awareness'],
  [0x23n, 'WAVE security management (IEEE 1609.2 / 1609.2.1)'],
  [0x24n, 'CAM - ETSI CA basic service'],
  [0x25n, 'DENM - ETSI DEN basic service'],
  [0x26n, 'misbehavior reporting for common applications'],
  [0x27n, 'VRU - vulnerable road users safety'],
  [0x7fn, 'testing'],
  [0x80n, 'differential GPS corrections, uncompressed'],
  [0x81n, 'differential GPS corrections, compressed'],
  [0x82n, 'SPaT/MAP - intersection safety and awareness'],
  [0x83n, 'TIM - traveller information and roadside signage'],
  [0x84n, 'mobile probe exchanges'],
  [0x85n, 'emergency and erratic vehicles present in roadway'],
  [0x86n, 'remote management protocol execution'],
  [0x87n, 'WSA - WAVE service advertisement'],
  [0x88n, 'peer-to-peer distribution of security management information'],
  [0x89n, 'SPATEM - traffic light manoeuvre service'],
  [0x8an, 'MAPEM - road and lane topology service'],
  [0x8bn, 'IVIM - infrastructure to vehicle information service'],
  [0x8cn, 'SREM - traffic light control requests service'],
  [0x8dn, 'GeoNetworking management communications'],
  [0x100n, 'CRL - certificate revocation list application'],
  [0x27dn, 'SSEM - traffic light control status service'],
  [0x207fn, 'CPM - ETSI collective perception service'],
  [0x4082n, 'vehicle-initiated distress notification'],
  [0x204080n, 'fast service advertisement protocol (ISO 24102-5)'],
  [0x204081n, 'ITS station-internal management communications (ISO 24102-4)'],
  [0x1020407en, 'IPv6 routing (IEEE 1609.3)'],
]);

/** Display form of a PSID: "0x20 (BSM - ...)" or "0x1234" when it is not in the table. */
export function psidLabel(psid: bigint | number): string {
  const v = BigInt(psid);
  const name = PSID_NAMES.get(v);
  const hex = `0x${v.toString(16)}`;
  return name === undefined ? hex : `${hex} (${name})`;
}

/** The PSID's name, if known. */
export function psidName(psid: bigint | number): string | undefined {
  return PSID_NAMES.get(BigInt(psid));
}
