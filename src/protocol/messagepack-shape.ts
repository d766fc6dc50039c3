/**
 * A cheap walk over MessagePack bytes before they are decoded, because the decoder allocates an array of the
 * declared length for every array header: ten thousand nested headers declaring 65,535 items each fit in
 * 30 KB and would ask for gigabytes. Every item takes at least one byte, so a payload whose containers
 * declare more items than it has bytes left is malformed and refused here, as is nesting deeper than
 * `maxDepth`. Pure: no allocation beyond a small stack.
 */
export function checkMessagePackShape(bytes: Uint8Array, maxDepth = 64): string | undefined {
  // How many items each open container still expects, innermost last.
  const pending: number[] = [1];
  let offset = 0;
  const need = (n: number): boolean => offset + n <= bytes.length;
  const readUint = (size: number): number => {
    let value = 0;
    for (let i = 0; i < size; i++) value = value * 256 + bytes[offset + i]!;
    offset += size;
    return value;
  };
  while (pending.length > 0) {
    if (pending[pending.length - 1] === 0) {
      pending.pop();
      continue;
    }
    pending[pending.length - 1]!--;
    if (!need(1)) return "The MessagePack data ends in the middle of a value.";
    const type = bytes[offset++]!;
    let items = 0; // items of a container header
    let skip = 0; // bytes of a scalar's body
    if (type <= 0x7f || type >= 0xe0 || type === 0xc0 || type === 0xc2 || type === 0xc3)
      skip = 0; // fixint, nil, bool
    else if (type >= 0x80 && type <= 0x8f)
      items = (type & 0x0f) * 2; // fixmap
    else if (type >= 0x90 && type <= 0x9f)
      items = type & 0x0f; // fixarray
    else if (type >= 0xa0 && type <= 0xbf)
      skip = type & 0x1f; // fixstr
    else {
      switch (type) {
        case 0xc4:
        case 0xd9:
          if (!need(1)) return truncated;
          skip = readUint(1);
          break; // bin8, str8
        case 0xc5:
        case 0xda:
          if (!need(2)) return truncated;
          skip = readUint(2);
          break; // bin16, str16
        case 0xc6:
        case 0xdb:
          if (!need(4)) return truncated;
          skip = readUint(4);
          break; // bin32, str32
        case 0xc7:
          if (!need(1)) return truncated;
          skip = readUint(1) + 1;
          break; // ext8 (+ type byte)
        case 0xc8:
          if (!need(2)) return truncated;
          skip = readUint(2) + 1;
          break; // ext16
        case 0xc9:
          if (!need(4)) return truncated;
          skip = readUint(4) + 1;
          break; // ext32
        case 0xca:
        case 0xce:
        case 0xd2:
          skip = 4;
          break; // float32, uint32, int32
        case 0xcb:
        case 0xcf:
        case 0xd3:
          skip = 8;
          break; // float64, uint64, int64
        case 0xcc:
        case 0xd0:
          skip = 1;
          break;
        case 0xcd:
        case 0xd1:
          skip = 2;
          break;
        case 0xd4:
          skip = 2;
          break; // fixext1 (type + 1)
        case 0xd5:
          skip = 3;
          break;
        case 0xd6:
          skip = 5;
          break;
        case 0xd7:
          skip = 9;
          break;
        case 0xd8:
          skip = 17;
          break;
        case 0xdc:
          if (!need(2)) return truncated;
          items = readUint(2);
          break; // array16
        case 0xdd:
          if (!need(4)) return truncated;
          items = readUint(4);
          break; // array32
        case 0xde:
          if (!need(2)) return truncated;
          items = readUint(2) * 2;
          break; // map16
        case 0xdf:
          if (!need(4)) return truncated;
          items = readUint(4) * 2;
          break; // map32
        default:
          return `Invalid MessagePack type byte 0x${type.toString(16)}.`;
      }
    }
    if (skip > 0) {
      if (!need(skip)) return truncated;
      offset += skip;
    }
    if (items > 0) {
      const expected = pending.reduce((sum, n) => sum + n, 0) + items;
      if (expected > bytes.length - offset) {
        return "The MessagePack data declares more items than it holds.";
      }
      if (pending.length >= maxDepth) return `The MessagePack data nests deeper than ${maxDepth} levels.`;
      pending.push(items);
    }
  }
  return undefined;
}

const truncated = "The MessagePack data ends in the middle of a value.";
