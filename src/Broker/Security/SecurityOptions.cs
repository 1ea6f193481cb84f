namespace Broker.Security;

/// <summary>Who gets in and what they may do (<c>Broker:Security</c>).</summary>
public sealed class SecurityOptions
{
    /// <summary>
    /// Let clients in without credentials. Null (the default) means: only when every listener is on a loopback
    /// address. A broker reachable from other machines must say <c>true</c> explicitly, or configure users or JWT.
    /// </summary>
    public bool? Anonymous { get; set; }

    /// <summary>Users checked against CONNECT login/passcode, by name.</summary>
    public Dictionary<string, UserOptions> Users { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Bearer tokens (JWT) as CONNECT passcode, <c>Authorization: Bearer</c> header, or on the WebSocket upgrade.</summary>
    public JwtOptions Jwt { get; set; } = new();

    /// <summary>Who may read (SUBSCRIBE) and write (SEND) which destinations. Empty: every authenticated client may do anything.</summary>
    public List<PermissionOptions> Permissions { get; set; } = [];

    /// <summary>WebSocket upgrades are refused (HTTP 403) unless their Origin is listed. Empty: any origin.</summary>
    public List<string> AllowedOrigins { get; set; } = [];

    /// <summary>
    /// Virtual hosts a CONNECT may name in its <c>host</c> header; each has its own destinations. Empty (the default):
    /// only <see cref="DefaultVirtualHost"/>. A list replaces that default rather than adding to it, so a broker for
    /// tenants only does not also serve "/".
    /// </summary>
    public List<string> VirtualHosts { get; set; } = [];

    /// <summary>The virtual host of a CONNECT without a <c>host</c> header (stomp.js sends none by default).</summary>
    public string DefaultVirtualHost { get; set; } = "/";
}

/// <summary>A user of the <c>users</c> provider.</summary>
public sealed class UserOptions
{
    /// <summary>A PBKDF2 hash made by <c>dotnet run --project src/Broker -- hash-password</c>.</summary>
    public string PasswordHash { get; set; } = "";

    /// <summary>Roles, for permissions.</summary>
    public List<string> Roles { get; set; } = [];
}

/// <summary>The <c>jwt</c> provider.</summary>
public sealed class JwtOptions
{
    /// <summary>Accept JWTs at all.</summary>
    public bool Enabled { get; set; }

    /// <summary>The required <c>iss</c>.</summary>
    public string? Issuer { get; set; }

    /// <summary>The required <c>aud</c>.</summary>
    public string? Audience { get; set; }

    /// <summary>HMAC keys, base64.</summary>
    public List<string> SymmetricKeys { get; set; } = [];

    /// <summary>RSA or ECDSA public keys, PEM text or the path of a PEM file.</summary>
    public List<string> PublicKeys { get; set; } = [];

    /// <summary>Tolerance for <c>exp</c> and <c>nbf</c>.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The claim that names the user.</summary>
    public string NameClaim { get; set; } = "sub";

    /// <summary>The claim that lists roles.</summary>
    public string RoleClaim { get; set; } = "role";
}

/// <summary>One permission rule: for these users or roles, destination patterns to read and write.</summary>
public sealed class PermissionOptions
{
    /// <summary>User names the rule applies to; "*" for everyone authenticated.</summary>
    public List<string> Users { get; set; } = [];

    /// <summary>Roles the rule applies to.</summary>
    public List<string> Roles { get; set; } = [];

    /// <summary>Destination patterns the user may SUBSCRIBE to: <c>*</c> matches within one path segment, <c>**</c> anything.</summary>
    public List<string> Read { get; set; } = [];

    /// <summary>Destination patterns the user may SEND to.</summary>
    public List<string> Write { get; set; } = [];
}
