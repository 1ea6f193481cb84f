using System.Text;

namespace Broker.Transports.WebSockets;

/// <summary>
/// RFC 7692 permessage-deflate negotiation: the first acceptable offer, always answered with
/// <c>server_no_context_takeover</c> and <c>client_no_context_takeover</c> (a server may require the latter, section
/// 7.1.1.2), so each message is compressed on its own and no zlib state outlives it.
/// </summary>
internal static class PerMessageDeflate
{
    /// <summary>The server's window when the client does not limit it.</summary>
    public const int DefaultWindowBits = 15;

    /// <returns>The window the server compresses with and the response header value; null when no offer is acceptable.</returns>
    public static (int ServerWindowBits, string Response)? Negotiate(string? extensions)
    {
        if (extensions is null)
        {
            return null;
        }

        foreach (var offer in extensions.Split(',', StringSplitOptions.TrimEntries))
        {
            var parameters = offer.Split(';', StringSplitOptions.TrimEntries);
            if (parameters[0] != "permessage-deflate")
            {
                continue;
            }

            var windowBits = DefaultWindowBits;
            var response = new StringBuilder("permessage-deflate; server_no_context_takeover");
            var acceptable = true;
            foreach (var parameter in parameters.Skip(1))
            {
                var equals = parameter.IndexOf('=', StringComparison.Ordinal);
                var name = equals < 0 ? parameter : parameter[..equals].Trim();
                var value = equals < 0 ? null : parameter[(equals + 1)..].Trim().Trim('"');
                int bits;
                switch (name)
                {
                    case "server_no_context_takeover" when value is null:
                    case "client_no_context_takeover" when value is null:
                        break; // answered below in any case
                    case "server_max_window_bits" when int.TryParse(value, out bits) && bits is >= 9 and <= 15:
                        windowBits = bits;
                        response.Append("; server_max_window_bits=").Append(bits);
                        break;
                    case "client_max_window_bits" when value is null:
                        break; // the client may use any size; not answering means 15
                    case "client_max_window_bits" when int.TryParse(value, out bits) && bits is >= 9 and <= 15:
                        response.Append("; client_max_window_bits=").Append(bits);
                        break;
                    default:
                        acceptable = false;
                        break;
                }
            }

            if (acceptable)
            {
                return (windowBits, response.Append("; client_no_context_takeover").ToString());
            }
        }

        return null;
    }
}
