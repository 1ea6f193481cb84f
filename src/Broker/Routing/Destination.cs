namespace Broker.Routing;

/// <summary>The kinds of destination, named as RabbitMQ's STOMP plugin names them.</summary>
public enum DestinationKind
{
    /// <summary><c>/topic/X</c>: every current subscriber gets each message.</summary>
    Topic,

    /// <summary><c>/queue/X</c>: competing consumers; messages wait for one.</summary>
    Queue,

    /// <summary><c>/temp-queue/X</c>: a private queue of the connection that names it in <c>reply-to</c>.</summary>
    TempQueue,

    /// <summary><c>/reply-queue/X</c>: where a responder sends to reach a temp queue.</summary>
    ReplyQueue,

    /// <summary><c>/exchange/E[/key]</c>: an existing RabbitMQ exchange.</summary>
    Exchange,

    /// <summary><c>/amq/queue/Q</c>: an existing RabbitMQ queue.</summary>
    AmqQueue,
}

/// <summary>A parsed destination header.</summary>
/// <param name="Kind">Which kind.</param>
/// <param name="Name">The name after the kind's prefix (for exchanges, the exchange name).</param>
/// <param name="Key">The routing key of an exchange destination; empty otherwise.</param>
/// <param name="Value">The header value as given.</param>
public readonly record struct Destination(DestinationKind Kind, string Name, string Key, string Value)
{
    /// <summary>Parses a destination header; the error names the forms that are valid.</summary>
    public static bool TryParse(string value, out Destination destination, out string error)
    {
        ArgumentNullException.ThrowIfNull(value);
        destination = default;
        error = "";
        foreach (var (prefix, kind) in Prefixes)
        {
            if (!value.StartsWith(prefix, StringComparison.Ordinal))
            {
                continue;
            }

            var rest = value[prefix.Length..];
            var key = "";
            if (kind == DestinationKind.Exchange)
            {
                var slash = rest.IndexOf('/', StringComparison.Ordinal);
                if (slash >= 0)
                {
                    key = rest[(slash + 1)..];
                    rest = rest[..slash];
                }
            }
            else if (rest.Contains('/', StringComparison.Ordinal))
            {
                error = $"invalid destination '{value}': a {prefix} name may not contain '/'";
                return false;
            }

            if (rest.Length == 0)
            {
                error = $"invalid destination '{value}': the name after {prefix} is empty";
                return false;
            }

            destination = new Destination(kind, rest, key, value);
            return true;
        }

        error = $"unknown destination '{value}': use /topic/NAME, /queue/NAME, /temp-queue/NAME, /exchange/NAME[/KEY] or /amq/queue/NAME";
        return false;
    }

    private static readonly (string Prefix, DestinationKind Kind)[] Prefixes =
    [
        ("/topic/", DestinationKind.Topic),
        ("/queue/", DestinationKind.Queue),
        ("/temp-queue/", DestinationKind.TempQueue),
        ("/reply-queue/", DestinationKind.ReplyQueue),
        ("/exchange/", DestinationKind.Exchange),
        ("/amq/queue/", DestinationKind.AmqQueue),
    ];
}
