import { describe, expect, it } from 'vitest';
import {
  addressKind,
  isRefusedAddress,
  refuseConnection,
  SELF_HOSTED_ADDRESS_POLICY,
  strictAddressPolicy,
} from '../../functions/core/http.ts';

const AWS = strictAddressPolicy();

describe('isRefusedAddress', () => {
  it('refuses in AWS the metadata service, loopback in every spelling, private and the like', () => {
    // Prepare
    const addresses = [
      '169.254.169.254',
      '127.0.0.1',
      '127.1',
      '0x7f000001',
      '2130706433',
      '0177.0.0.1',
      '::ffff:127.0.0.1',
      '[::ffff:7f00:1]',
      '::1',
      '0.0.0.0',
      '::',
      '10.0.0.5',
      '172.16.3.4',
      '192.168.1.1',
      '100.64.0.1',
      'fc00::1',
      'fd12:3456::1',
      'fe80::1%eth0',
      '64:ff9b::a9fe:a9fe',
      '2002:a9fe:a9fe::1',
      '224.0.0.1',
      '255.255.255.255',
      'ff02::1',
      'not-an-address',
    ];

    // Act
    const allowed = addresses.filter((address) => !isRefusedAddress(address, AWS));

    // Assess
    expect(allowed).toEqual([]);
  });

  it('allows public addresses everywhere', () => {
    // Prepare
    const addresses = [
      '140.82.112.3',
      '8.8.8.8',
      '172.32.0.1',
      '2606:4700::1111',
      '::ffff:8.8.8.8',
    ];

    // Act
    const refused = addresses.filter(
      (address) =>
        isRefusedAddress(address, AWS) || isRefusedAddress(address, SELF_HOSTED_ADDRESS_POLICY),
    );

    // Assess
    expect(refused).toEqual([]);
  });

  it('allows loopback and private addresses in serve, not link-local ones', () => {
    // Prepare
    const addresses = [
      '127.0.0.1',
      '::1',
      '10.1.2.3',
      '192.168.0.10',
      'fd00::1',
      '169.254.169.254',
      'fe80::1',
    ];

    // Act
    const refused = addresses.filter((address) =>
      isRefusedAddress(address, SELF_HOSTED_ADDRESS_POLICY),
    );

    // Assess
    expect(refused).toEqual(['169.254.169.254', 'fe80::1']);
  });

  it('reads IPv4 the way getaddrinfo does', () => {
    // Prepare
    const spellings = ['127.1', '0x7f000001', '2130706433', '0177.0.0.01', '127.0.1'];

    // Act
    const kinds = spellings.map(addressKind);

    // Assess
    expect(kinds).toEqual(['loopback', 'loopback', 'loopback', 'loopback', 'loopback']);
    expect(addressKind('256.0.0.1')).toBeUndefined();
    expect(addressKind('1.2.3.4.5')).toBeUndefined();
  });
});

describe('refuseConnection', () => {
  it('refuses each spelling of loopback in AWS and allows it once the host is listed', () => {
    // Prepare
    const spellings = [
      ['127.1', '127.0.0.1'],
      ['0x7f000001', '127.0.0.1'],
      ['[::ffff:127.0.0.1]', '::ffff:7f00:1'],
      ['localhost', '127.0.0.1'],
      ['169.254.169.254', '169.254.169.254'],
    ] as const;

    // Act
    const refused = spellings.map(([host, ip]) => refuseConnection(host, ip, AWS, 'https:'));
    const listed = spellings.map(([host, ip]) =>
      refuseConnection(host, ip, strictAddressPolicy([host]), 'https:'),
    );

    // Assess
    expect(refused.every((reason) => reason !== undefined)).toBe(true);
    expect(refused[4]).toMatch(/169\.254\.169\.254 \(link-local address\), which is refused/);
    expect(listed).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it('matches a listed host however it is spelled', () => {
    // Prepare
    const policy = strictAddressPolicy(['127.1', 'Git.Internal.Example.com.']);

    // Act
    const results = [
      refuseConnection('127.0.0.1', '127.0.0.1', policy, 'https:'),
      refuseConnection('0x7f000001', '127.0.0.1', policy, 'https:'),
      refuseConnection('git.internal.example.com', '10.0.0.8', policy, 'https:'),
      refuseConnection('other.example.com', '10.0.0.8', policy, 'https:'),
    ];

    // Assess
    expect(results.slice(0, 3)).toEqual([undefined, undefined, undefined]);
    expect(results[3]).toMatch(/private address/);
  });

  it('keeps plain http to loopback addresses, listed or not', () => {
    // Prepare
    const listed = strictAddressPolicy(['git.internal.example.com']);

    // Act
    const results = [
      refuseConnection('127.0.0.1', '127.0.0.1', SELF_HOSTED_ADDRESS_POLICY, 'http:'),
      refuseConnection('10.0.0.8', '10.0.0.8', SELF_HOSTED_ADDRESS_POLICY, 'http:'),
      refuseConnection('git.internal.example.com', '10.0.0.8', listed, 'http:'),
      refuseConnection('127.0.0.1', '127.0.0.1', AWS, 'http:'),
    ];

    // Assess
    expect(results[0]).toBeUndefined();
    expect(results[1]).toMatch(/only loopback hosts may use http/);
    expect(results[2]).toMatch(/only loopback hosts may use http/);
    expect(results[3]).toMatch(/loopback address\), which is refused/);
  });
});
