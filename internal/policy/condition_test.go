package policy

import "testing"

// holds reports whether an Allow statement with the given Condition block
// applies to p asking with ctx.
func holds(t *testing.T, condition string, p Principal, ctx Context) bool {
	t.Helper()
	pol := mustParse(t, ParseResource, keyPolicy(stmt(`"Principal":"*"`, `"Condition":`+condition)))
	return pol.EvaluateResource(req(p, "kms:Encrypt", ctx)).Allow
}

func ctx1(key string, vals ...string) MapContext { return MapContext{key: vals} }

func TestConditionOperators(t *testing.T) {
	none := MapContext{}
	type tc struct {
		name      string
		condition string
		ctx       Context
		want      bool
	}
	tests := []tc{
		// String
		{"StringEquals match", `{"StringEquals":{"kms:EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}}`, ctx1("kms:encryptionalgorithm", "SYMMETRIC_DEFAULT"), true},
		{"StringEquals is case-sensitive", `{"StringEquals":{"kms:EncryptionAlgorithm":"symmetric_default"}}`, ctx1("kms:encryptionalgorithm", "SYMMETRIC_DEFAULT"), false},
		{"StringEquals values are ORed", `{"StringEquals":{"k:s":["a","b","c"]}}`, ctx1("k:s", "b"), true},
		{"StringEquals absent", `{"StringEquals":{"k:s":"a"}}`, none, false},
		{"StringEquals nil context", `{"StringEquals":{"k:s":"a"}}`, nil, false},
		{"StringEquals empty value list is absent", `{"StringEquals":{"k:s":"a"}}`, ctx1("k:s"), false},
		{"StringEquals takes no wildcard", `{"StringEquals":{"k:s":"a*"}}`, ctx1("k:s", "abc"), false},
		{"StringEquals wildcard is literal", `{"StringEquals":{"k:s":"a*"}}`, ctx1("k:s", "a*"), true},
		{"StringEquals number as string", `{"StringEquals":{"k:s":10}}`, ctx1("k:s", "10"), true},
		{"StringNotEquals differs", `{"StringNotEquals":{"k:s":"a"}}`, ctx1("k:s", "b"), true},
		{"StringNotEquals equal", `{"StringNotEquals":{"k:s":"a"}}`, ctx1("k:s", "a"), false},
		{"StringNotEquals values are NORed", `{"StringNotEquals":{"k:s":["a","b"]}}`, ctx1("k:s", "b"), false},
		{"StringNotEquals absent", `{"StringNotEquals":{"k:s":"a"}}`, none, true},
		{"StringEqualsIgnoreCase", `{"StringEqualsIgnoreCase":{"k:s":"ALICE"}}`, ctx1("k:s", "alice"), true},
		{"StringEqualsIgnoreCase differs", `{"StringEqualsIgnoreCase":{"k:s":"ALICE"}}`, ctx1("k:s", "bob"), false},
		{"StringNotEqualsIgnoreCase equal", `{"StringNotEqualsIgnoreCase":{"k:s":"ALICE"}}`, ctx1("k:s", "Alice"), false},
		{"StringNotEqualsIgnoreCase absent", `{"StringNotEqualsIgnoreCase":{"k:s":"ALICE"}}`, none, true},
		{"StringLike star", `{"StringLike":{"k:s":"alias/app-*"}}`, ctx1("k:s", "alias/app-prod"), true},
		{"StringLike question", `{"StringLike":{"k:s":"v?"}}`, ctx1("k:s", "v2"), true},
		{"StringLike question is one character", `{"StringLike":{"k:s":"v?"}}`, ctx1("k:s", "v10"), false},
		{"StringLike star spans colons", `{"StringLike":{"k:s":"arn:aws:kms:*:key/x"}}`, ctx1("k:s", "arn:aws:kms:us-east-1:111122223333:key/x"), true},
		{"StringLike is case-sensitive", `{"StringLike":{"k:s":"Alias/*"}}`, ctx1("k:s", "alias/x"), false},
		{"StringLike absent", `{"StringLike":{"k:s":"*"}}`, none, false},
		{"StringNotLike match", `{"StringNotLike":{"k:s":"alias/app-*"}}`, ctx1("k:s", "alias/app-prod"), false},
		{"StringNotLike no match", `{"StringNotLike":{"k:s":"alias/app-*"}}`, ctx1("k:s", "alias/other"), true},
		{"StringNotLike absent", `{"StringNotLike":{"k:s":"*"}}`, none, true},

		// Numeric
		{"NumericEquals", `{"NumericEquals":{"k:n":"7"}}`, ctx1("k:n", "7.0"), true},
		{"NumericEquals differs", `{"NumericEquals":{"k:n":7}}`, ctx1("k:n", "8"), false},
		{"NumericEquals not a number", `{"NumericEquals":{"k:n":7}}`, ctx1("k:n", "seven"), false},
		{"NumericEquals absent", `{"NumericEquals":{"k:n":7}}`, none, false},
		{"NumericNotEquals", `{"NumericNotEquals":{"k:n":7}}`, ctx1("k:n", "8"), true},
		{"NumericNotEquals equal", `{"NumericNotEquals":{"k:n":[7,8]}}`, ctx1("k:n", "8"), false},
		{"NumericNotEquals absent", `{"NumericNotEquals":{"k:n":7}}`, none, true},
		{"NumericLessThan", `{"NumericLessThan":{"k:n":"30"}}`, ctx1("k:n", "7"), true},
		{"NumericLessThan equal", `{"NumericLessThan":{"k:n":"30"}}`, ctx1("k:n", "30"), false},
		{"NumericLessThanEquals equal", `{"NumericLessThanEquals":{"k:n":"30"}}`, ctx1("k:n", "30"), true},
		{"NumericLessThanEquals more", `{"NumericLessThanEquals":{"k:n":"30"}}`, ctx1("k:n", "30.5"), false},
		{"NumericGreaterThan", `{"NumericGreaterThan":{"k:n":"1.5"}}`, ctx1("k:n", "2"), true},
		{"NumericGreaterThan equal", `{"NumericGreaterThan":{"k:n":"2"}}`, ctx1("k:n", "2"), false},
		{"NumericGreaterThanEquals", `{"NumericGreaterThanEquals":{"k:n":"-1"}}`, ctx1("k:n", "-1"), true},
		{"NumericGreaterThanEquals less", `{"NumericGreaterThanEquals":{"k:n":"0"}}`, ctx1("k:n", "-1"), false},
		{"NumericLessThan absent", `{"NumericLessThan":{"k:n":"30"}}`, none, false},

		// Date
		{"DateEquals ISO", `{"DateEquals":{"kms:ValidTo":"2030-01-01T00:00:00Z"}}`, ctx1("kms:validto", "2030-01-01T00:00:00Z"), true},
		{"DateEquals zones", `{"DateEquals":{"kms:ValidTo":"2030-01-01T02:00:00+02:00"}}`, ctx1("kms:validto", "2030-01-01T00:00:00Z"), true},
		{"DateEquals epoch against ISO", `{"DateEquals":{"kms:ValidTo":"1893456000"}}`, ctx1("kms:validto", "2030-01-01T00:00:00Z"), true},
		{"DateEquals date only", `{"DateEquals":{"kms:ValidTo":"2030-01-01"}}`, ctx1("kms:validto", "1893456000"), true},
		{"DateEquals fractional seconds", `{"DateEquals":{"kms:ValidTo":"2030-01-01T00:00:00.000Z"}}`, ctx1("kms:validto", "1893456000"), true},
		{"DateEquals differs", `{"DateEquals":{"kms:ValidTo":"2030-01-01"}}`, ctx1("kms:validto", "2030-01-02"), false},
		{"DateEquals not a date", `{"DateEquals":{"kms:ValidTo":"2030-01-01"}}`, ctx1("kms:validto", "soon"), false},
		{"DateNotEquals", `{"DateNotEquals":{"kms:ValidTo":"2030-01-01"}}`, ctx1("kms:validto", "2030-01-02"), true},
		{"DateNotEquals absent", `{"DateNotEquals":{"kms:ValidTo":"2030-01-01"}}`, none, true},
		{"DateLessThan", `{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}`, ctx1("aws:currenttime", "2026-08-01T12:00:00Z"), true},
		{"DateLessThan later", `{"DateLessThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}`, ctx1("aws:currenttime", "2026-08-01T12:00:00Z"), false},
		{"DateLessThanEquals equal", `{"DateLessThanEquals":{"aws:EpochTime":"1700000000"}}`, ctx1("aws:epochtime", "1700000000"), true},
		{"DateGreaterThan", `{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}`, ctx1("aws:currenttime", "2026-08-01T12:00:00Z"), true},
		{"DateGreaterThan equal", `{"DateGreaterThan":{"aws:EpochTime":1700000000}}`, ctx1("aws:epochtime", "1700000000"), false},
		{"DateGreaterThanEquals equal", `{"DateGreaterThanEquals":{"aws:EpochTime":1700000000}}`, ctx1("aws:epochtime", "1700000000"), true},
		{"DateLessThan absent", `{"DateLessThan":{"aws:CurrentTime":"2030-01-01"}}`, none, false},

		// Bool
		{"Bool true", `{"Bool":{"kms:GrantIsForAWSResource":true}}`, ctx1("kms:grantisforawsresource", "true"), true},
		{"Bool string", `{"Bool":{"kms:GrantIsForAWSResource":"true"}}`, ctx1("kms:grantisforawsresource", "true"), true},
		{"Bool ignores case", `{"Bool":{"kms:GrantIsForAWSResource":"True"}}`, ctx1("kms:grantisforawsresource", "TRUE"), true},
		{"Bool false", `{"Bool":{"kms:GrantIsForAWSResource":true}}`, ctx1("kms:grantisforawsresource", "false"), false},
		{"Bool false wanted", `{"Bool":{"aws:SecureTransport":false}}`, ctx1("aws:securetransport", "false"), true},
		{"Bool absent", `{"Bool":{"kms:GrantIsForAWSResource":true}}`, none, false},
		{"BoolIfExists absent", `{"BoolIfExists":{"kms:GrantIsForAWSResource":true}}`, none, true},
		{"BoolIfExists present false", `{"BoolIfExists":{"kms:GrantIsForAWSResource":true}}`, ctx1("kms:grantisforawsresource", "false"), false},

		// Binary
		{"BinaryEquals", `{"BinaryEquals":{"k:b":"QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}`, ctx1("k:b", "QmluYXJ5VmFsdWVJbkJhc2U2NA=="), true},
		{"BinaryEquals differs", `{"BinaryEquals":{"k:b":"QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}`, ctx1("k:b", "AAAA"), false},
		{"BinaryEquals not base64", `{"BinaryEquals":{"k:b":"AAAA"}}`, ctx1("k:b", "!!!!"), false},
		{"BinaryEquals absent", `{"BinaryEquals":{"k:b":"AAAA"}}`, none, false},

		// IP address
		{"IpAddress in CIDR", `{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`, ctx1("aws:sourceip", "203.0.113.77"), true},
		{"IpAddress outside CIDR", `{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`, ctx1("aws:sourceip", "203.0.114.1"), false},
		{"IpAddress host bits set", `{"IpAddress":{"aws:SourceIp":"203.0.113.9/24"}}`, ctx1("aws:sourceip", "203.0.113.200"), true},
		{"IpAddress single address is /32", `{"IpAddress":{"aws:SourceIp":"203.0.113.5"}}`, ctx1("aws:sourceip", "203.0.113.5"), true},
		{"IpAddress single address exact", `{"IpAddress":{"aws:SourceIp":"203.0.113.5"}}`, ctx1("aws:sourceip", "203.0.113.6"), false},
		{"IpAddress IPv6", `{"IpAddress":{"aws:SourceIp":["203.0.113.0/24","2001:DB8:1234:5678::/64"]}}`, ctx1("aws:sourceip", "2001:db8:1234:5678::1"), true},
		{"IpAddress IPv6 outside", `{"IpAddress":{"aws:SourceIp":"2001:DB8:1234:5678::/64"}}`, ctx1("aws:sourceip", "2001:db8:1234:5679::1"), false},
		{"IpAddress mapped IPv4", `{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, ctx1("aws:sourceip", "::ffff:10.1.2.3"), true},
		{"IpAddress not an address", `{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, ctx1("aws:sourceip", "vpce-1a2b3c4d"), false},
		{"IpAddress absent", `{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, none, false},
		{"NotIpAddress outside", `{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","192.168.0.0/16"]}}`, ctx1("aws:sourceip", "203.0.113.1"), true},
		{"NotIpAddress inside", `{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","192.168.0.0/16"]}}`, ctx1("aws:sourceip", "192.168.1.1"), false},
		{"NotIpAddress absent", `{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, none, true},

		// ARN
		{"ArnEquals", `{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:us-east-1:111122223333:topic"}}`, ctx1("aws:sourcearn", "arn:aws:sns:us-east-1:111122223333:topic"), true},
		{"ArnEquals takes wildcards", `{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:*:111122223333:*"}}`, ctx1("aws:sourcearn", "arn:aws:sns:us-east-1:111122223333:topic"), true},
		{"ArnLike principal differs", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/Admin*"}}`, ctx1("aws:sourcearn", "x"), false},
		// The IAM User Guide's example: StringLike matches, ArnLike does not.
		{"ArnLike checks each part", `{"ArnLike":{"aws:SourceArn":"arn:aws:someservice:*:111122223333:finance/*"}}`,
			ctx1("aws:sourcearn", "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"), false},
		{"StringLike spans parts", `{"StringLike":{"aws:SourceArn":"arn:aws:someservice:*:111122223333:finance/*"}}`,
			ctx1("aws:sourcearn", "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"), true},
		{"ArnLike resource part keeps colons", `{"ArnLike":{"aws:SourceArn":"arn:aws:logs:us-east-1:111122223333:log-group:*"}}`,
			ctx1("aws:sourcearn", "arn:aws:logs:us-east-1:111122223333:log-group:app:log-stream:x"), true},
		{"ArnLike is case-sensitive", `{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:111122223333:Topic"}}`, ctx1("aws:sourcearn", "arn:aws:sns:us-east-1:111122223333:topic"), false},
		{"ArnLike not an ARN", `{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:111122223333:*"}}`, ctx1("aws:sourcearn", "topic"), false},
		{"ArnLike whole-value star", `{"ArnLike":{"aws:SourceArn":"*"}}`, ctx1("aws:sourcearn", "arn:aws:sns:us-east-1:111122223333:topic"), true},
		{"ArnNotEquals", `{"ArnNotEquals":{"aws:SourceArn":"arn:aws:sns:*:111122223333:*"}}`, ctx1("aws:sourcearn", "arn:aws:sns:us-east-1:444455556666:topic"), true},
		{"ArnNotLike match", `{"ArnNotLike":{"aws:SourceArn":"arn:aws:sns:*:111122223333:*"}}`, ctx1("aws:sourcearn", "arn:aws:sns:us-east-1:111122223333:topic"), false},
		{"ArnNotLike absent", `{"ArnNotLike":{"aws:SourceArn":"arn:aws:sns:*:*:*"}}`, none, true},

		// Null
		{"Null true absent", `{"Null":{"kms:EncryptionContextKeys":true}}`, none, true},
		{"Null true present", `{"Null":{"kms:EncryptionContextKeys":"true"}}`, ctx1("kms:encryptioncontextkeys", "a"), false},
		{"Null false present", `{"Null":{"kms:EncryptionContextKeys":false}}`, ctx1("kms:encryptioncontextkeys", "a"), true},
		{"Null false absent", `{"Null":{"kms:EncryptionContextKeys":false}}`, none, false},
		{"Null both", `{"Null":{"kms:EncryptionContextKeys":[true,false]}}`, none, true},

		// ...IfExists
		{"StringEqualsIfExists absent", `{"StringEqualsIfExists":{"k:s":"a"}}`, none, true},
		{"StringEqualsIfExists match", `{"StringEqualsIfExists":{"k:s":"a"}}`, ctx1("k:s", "a"), true},
		{"StringEqualsIfExists mismatch", `{"StringEqualsIfExists":{"k:s":"a"}}`, ctx1("k:s", "b"), false},
		{"StringNotEqualsIfExists absent", `{"StringNotEqualsIfExists":{"k:s":"a"}}`, none, true},
		{"StringNotEqualsIfExists equal", `{"StringNotEqualsIfExists":{"k:s":"a"}}`, ctx1("k:s", "a"), false},
		{"StringLikeIfExists absent", `{"StringLikeIfExists":{"k:s":"a*"}}`, none, true},
		{"NumericLessThanIfExists absent", `{"NumericLessThanIfExists":{"k:n":"3"}}`, none, true},
		{"NumericLessThanIfExists present", `{"NumericLessThanIfExists":{"k:n":"3"}}`, ctx1("k:n", "4"), false},
		{"DateGreaterThanIfExists absent", `{"DateGreaterThanIfExists":{"aws:TokenIssueTime":"2020-01-01"}}`, none, true},
		{"IpAddressIfExists absent", `{"IpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}}`, none, true},
		{"IpAddressIfExists outside", `{"IpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}}`, ctx1("aws:sourceip", "11.0.0.1"), false},
		{"ArnLikeIfExists absent", `{"ArnLikeIfExists":{"aws:SourceArn":"arn:*:*:*:*:*"}}`, none, true},
		{"BinaryEqualsIfExists absent", `{"BinaryEqualsIfExists":{"k:b":"AAAA"}}`, none, true},
		{"operator names ignore case", `{"stringequalsifexists":{"k:s":"a"}}`, none, true},

		// Blocks: operators AND, keys AND, values OR.
		{"all operators must hold", `{"StringEquals":{"k:s":"a"},"NumericLessThan":{"k:n":"3"}}`, MapContext{"k:s": {"a"}, "k:n": {"4"}}, false},
		{"all operators hold", `{"StringEquals":{"k:s":"a"},"NumericLessThan":{"k:n":"3"}}`, MapContext{"k:s": {"a"}, "k:n": {"2"}}, true},
		{"all keys must hold", `{"StringEquals":{"k:s":"a","k:t":"b"}}`, MapContext{"k:s": {"a"}, "k:t": {"c"}}, false},
		{"all keys hold", `{"StringEquals":{"k:s":"a","k:t":"b"}}`, MapContext{"k:s": {"a"}, "k:t": {"b"}}, true},
		{"empty block", `{}`, none, true},
		{"empty operator", `{"StringEquals":{}}`, none, true},
		{"condition key names ignore case", `{"StringEquals":{"AWS:SourceVPCE":"vpce-1"}}`, ctx1("aws:sourcevpce", "vpce-1"), true},
	}
	for _, tt := range tests {
		if got := holds(t, tt.condition, keyUser, tt.ctx); got != tt.want {
			t.Errorf("%s: %s with %v = %v, want %v", tt.name, tt.condition, tt.ctx, got, tt.want)
		}
	}
}

// The set operators, with the kms:EncryptionContextKeys and
// kms:GrantOperations examples of the KMS Developer Guide.
func TestSetOperators(t *testing.T) {
	ecKeys := func(keys ...string) MapContext { return MapContext{"kms:encryptioncontextkeys": keys} }
	ops := func(names ...string) MapContext { return MapContext{"kms:grantoperations": names} }
	anyAppName := `{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":"AppName"}}`
	allKnown := `{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["AppName","FilePath"]}}`
	encryptOnly := `{"ForAllValues:StringEquals":{"kms:GrantOperations":["Encrypt","ReEncryptTo"]}}`
	tests := []struct {
		name      string
		condition string
		ctx       MapContext
		want      bool
	}{
		// "at least one of the encryption context pairs in the request
		// includes the AppName key": AppName=Helper, Project=Alpha passes,
		// Project=Alpha alone or no encryption context fails.
		{"ForAnyValue one matches", anyAppName, ecKeys("AppName", "Project"), true},
		{"ForAnyValue none matches", anyAppName, ecKeys("Project"), false},
		{"ForAnyValue no context", anyAppName, MapContext{}, false},
		{"ForAnyValue case-sensitive", anyAppName, ecKeys("appname"), false},
		// ForAllValues: every request key must be listed; none required.
		{"ForAllValues subset", allKnown, ecKeys("AppName"), true},
		{"ForAllValues all listed", allKnown, ecKeys("FilePath", "AppName"), true},
		{"ForAllValues one unlisted", allKnown, ecKeys("AppName", "Other"), false},
		{"ForAllValues no context", allKnown, MapContext{}, true},
		{"ForAllValues grant ops", encryptOnly, ops("Encrypt"), true},
		{"ForAllValues grant ops extra", encryptOnly, ops("Encrypt", "Decrypt"), false},
		// Negated operators apply per request value.
		{"ForAllValues:StringNotEquals none listed", `{"ForAllValues:StringNotEquals":{"aws:TagKeys":["secret","admin"]}}`, MapContext{"aws:tagkeys": {"a", "b"}}, true},
		{"ForAllValues:StringNotEquals one listed", `{"ForAllValues:StringNotEquals":{"aws:TagKeys":["secret","admin"]}}`, MapContext{"aws:tagkeys": {"a", "admin"}}, false},
		{"ForAllValues:StringNotEquals absent", `{"ForAllValues:StringNotEquals":{"aws:TagKeys":"secret"}}`, MapContext{}, true},
		{"ForAnyValue:StringNotEquals one unlisted", `{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["secret","admin"]}}`, MapContext{"aws:tagkeys": {"admin", "x"}}, true},
		{"ForAnyValue:StringNotEquals all listed", `{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["secret","admin"]}}`, MapContext{"aws:tagkeys": {"admin"}}, false},
		{"ForAnyValue:StringNotEquals absent", `{"ForAnyValue:StringNotEquals":{"aws:TagKeys":"secret"}}`, MapContext{}, false},
		{"ForAnyValue:StringLike", `{"ForAnyValue:StringLike":{"kms:ResourceAliases":"alias/app-*"}}`, MapContext{"kms:resourcealiases": {"alias/x", "alias/app-1"}}, true},
		{"ForAllValues:StringLike", `{"ForAllValues:StringLike":{"kms:ResourceAliases":"alias/app-*"}}`, MapContext{"kms:resourcealiases": {"alias/x", "alias/app-1"}}, false},
		{"ForAnyValue IfExists absent", `{"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":"a"}}`, MapContext{}, true},
		{"ForAnyValue empty list", anyAppName, ecKeys(), false},
		{"ForAllValues empty policy list", `{"ForAllValues:StringEquals":{"aws:TagKeys":[]}}`, MapContext{"aws:tagkeys": {"a"}}, false},
		{"ForAllValues empty policy list, no tags", `{"ForAllValues:StringEquals":{"aws:TagKeys":[]}}`, MapContext{}, true},
		// Without a set operator, a multi-valued key matches when any value does.
		{"plain operator on a list", `{"StringEquals":{"kms:EncryptionContextKeys":"AppName"}}`, ecKeys("Project", "AppName"), true},
		{"plain negated operator on a list", `{"StringNotEquals":{"kms:EncryptionContextKeys":"AppName"}}`, ecKeys("Project", "AppName"), false},
		{"Null with ForAllValues", `{"ForAllValues:Null":{"aws:TagKeys":"false"}}`, MapContext{"aws:tagkeys": {"a"}}, true},
	}
	for _, tt := range tests {
		if got := holds(t, tt.condition, keyUser, tt.ctx); got != tt.want {
			t.Errorf("%s: %s with %v = %v, want %v", tt.name, tt.condition, tt.ctx, got, tt.want)
		}
	}
}

func TestKMSConditionKeys(t *testing.T) {
	tests := []struct {
		name      string
		condition string
		p         Principal
		ctx       MapContext
		want      bool
	}{
		// The context key in the condition name is case-insensitive (callers
		// pass it lower-cased); the value follows the operator.
		{"EC purpose", `{"StringEquals":{"kms:EncryptionContext:Purpose":"Test"}}`, keyUser, MapContext{"kms:encryptioncontext:purpose": {"Test"}}, true},
		{"EC purpose value case", `{"StringEquals":{"kms:EncryptionContext:Purpose":"Test"}}`, keyUser, MapContext{"kms:encryptioncontext:purpose": {"test"}}, false},
		{"EC purpose ignoring case", `{"StringEqualsIgnoreCase":{"kms:EncryptionContext:Purpose":"Test"}}`, keyUser, MapContext{"kms:encryptioncontext:purpose": {"test"}}, true},
		{"EC purpose absent", `{"StringEquals":{"kms:EncryptionContext:Purpose":"Test"}}`, keyUser, MapContext{"kms:encryptioncontext:other": {"Test"}}, false},
		{"EC any value required", `{"StringLike":{"kms:encryptioncontext:PURPOSE":"*"}}`, keyUser, MapContext{"kms:encryptioncontext:purpose": {""}}, true},
		// kms:CallerAccount comes from the principal.
		{"CallerAccount", `{"StringEquals":{"kms:CallerAccount":"111122223333"}}`, keyUser, nil, true},
		{"CallerAccount other", `{"StringEquals":{"kms:CallerAccount":"111122223333"}}`, outsider, nil, false},
		{"CallerAccount not from context", `{"StringEquals":{"kms:CallerAccount":"111122223333"}}`, outsider, MapContext{"kms:calleraccount": {"111122223333"}}, false},
		// kms:ViaService is absent on direct calls.
		{"ViaService absent", `{"StringEquals":{"kms:ViaService":"ec2.us-east-1.amazonaws.com"}}`, keyUser, MapContext{}, false},
		{"ViaService present", `{"StringEquals":{"kms:ViaService":"ec2.us-east-1.amazonaws.com"}}`, keyUser, MapContext{"kms:viaservice": {"ec2.us-east-1.amazonaws.com"}}, true},
		{"ViaService like", `{"StringLike":{"kms:ViaService":"ec2.*.amazonaws.com"}}`, keyUser, MapContext{"kms:viaservice": {"ec2.eu-west-1.amazonaws.com"}}, true},
		{"ViaService denied when absent", `{"StringNotEquals":{"kms:ViaService":"ec2.us-east-1.amazonaws.com"}}`, keyUser, MapContext{}, true},
		// Principal keys.
		{"PrincipalArn of a session is the role", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/Example*"}}`, userSession, nil, true},
		{"PrincipalArn of a user", `{"StringEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/ExampleUser"}}`, keyUser, nil, true},
		{"PrincipalAccount", `{"StringEquals":{"aws:PrincipalAccount":"444455556666"}}`, outsider, nil, true},
		{"username absent for sessions", `{"Null":{"aws:username":"true"}}`, userSession, nil, true},
		{"userid", `{"StringLike":{"aws:userid":"AROAADMIN:*"}}`, adminSession, nil, true},
		{"PrincipalType user", `{"StringEquals":{"aws:PrincipalType":"User"}}`, keyUser, nil, true},
		{"PrincipalType session", `{"StringEquals":{"aws:PrincipalType":"AssumedRole"}}`, userSession, nil, true},
		{"PrincipalType root", `{"StringEquals":{"aws:PrincipalType":"Account"}}`, root, nil, true},
		// A user's path may hold what looks like another kind of principal.
		{"PrincipalType of a user whose path says assumed-role", `{"StringEquals":{"aws:PrincipalType":"User"}}`,
			Principal{ARN: "arn:aws:iam::111122223333:user/x:assumed-role/eve", Account: account, Username: "eve", UserID: "AIDAEVE"}, nil, true},
		// aws:TokenIssueTime: present for temporary credentials only, as
		// the time they were issued; revoking sessions issued before a
		// time denies with DateLessThan.
		{"TokenIssueTime before", `{"DateLessThan":{"aws:TokenIssueTime":"2026-12-04T12:00:00Z"}}`,
			Principal{ARN: userSession.ARN, Account: account, RoleARN: userSession.RoleARN, TokenIssueTime: "2026-12-04T11:59:59Z"}, nil, true},
		{"TokenIssueTime after", `{"DateLessThan":{"aws:TokenIssueTime":"2026-12-04T12:00:00Z"}}`,
			Principal{ARN: userSession.ARN, Account: account, RoleARN: userSession.RoleARN, TokenIssueTime: "2026-12-04T12:00:00Z"}, nil, false},
		{"TokenIssueTime absent for long-term credentials", `{"DateLessThan":{"aws:TokenIssueTime":"2026-12-04T12:00:00Z"}}`, keyUser, nil, false},
		{"TokenIssueTime not from context", `{"Null":{"aws:TokenIssueTime":"true"}}`, keyUser, MapContext{"aws:tokenissuetime": {"2026-12-04T11:59:59Z"}}, true},
		// Keys AWS puts in every signed request: no caller here is an AWS
		// service, nor calls through one.
		{"PrincipalIsAWSService", `{"Bool":{"aws:PrincipalIsAWSService":"false"}}`, keyUser, nil, true},
		{"PrincipalIsAWSService of the root", `{"Bool":{"aws:PrincipalIsAWSService":"false"}}`, root, nil, true},
		{"PrincipalIsAWSService not from context", `{"Bool":{"aws:PrincipalIsAWSService":"false"}}`, keyUser, MapContext{"aws:principalisawsservice": {"true"}}, true},
		{"ViaAWSService", `{"Bool":{"aws:ViaAWSService":"false"}}`, userSession, nil, true},
		// aws:MultiFactorAuthPresent: in the context of temporary
		// credentials only, and false, since no session starts with MFA.
		{"MultiFactorAuthPresent of a session", `{"Bool":{"aws:MultiFactorAuthPresent":"false"}}`,
			Principal{ARN: userSession.ARN, Account: account, RoleARN: userSession.RoleARN, TokenIssueTime: "2026-12-04T12:00:00Z"}, nil, true},
		// aws:ResourceAccount is the account of the resource's ARN.
		{"ResourceAccount", `{"StringEquals":{"aws:ResourceAccount":"${aws:PrincipalAccount}"}}`, keyUser, nil, true},
		{"ResourceAccount of another account", `{"StringNotEquals":{"aws:ResourceAccount":"${aws:PrincipalAccount}"}}`, outsider, nil, true},
		{"ResourceAccount not from context", `{"StringEquals":{"aws:ResourceAccount":"444455556666"}}`, keyUser, MapContext{"aws:resourceaccount": {"444455556666"}}, false},
		{"MultiFactorAuthPresent absent for long-term credentials", `{"Null":{"aws:MultiFactorAuthPresent":"true"}}`, keyUser, nil, true},
		{"SourceIp", `{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}`, keyUser, MapContext{"aws:sourceip": {"192.0.2.10"}}, true},
		{"GrantIsForAWSResource", `{"Bool":{"kms:GrantIsForAWSResource":"true"}}`, keyUser, MapContext{"kms:grantisforawsresource": {"true"}}, true},
	}
	for _, tt := range tests {
		var ctx Context
		if tt.ctx != nil {
			ctx = tt.ctx
		}
		if got := holds(t, tt.condition, tt.p, ctx); got != tt.want {
			t.Errorf("%s: %s = %v, want %v", tt.name, tt.condition, got, tt.want)
		}
	}
}

// recordingContext records the keys it is asked for.
type recordingContext struct {
	MapContext
	asked []string
}

func (r *recordingContext) Values(key string) ([]string, bool) {
	r.asked = append(r.asked, key)
	return r.MapContext.Values(key)
}

func TestContextIsAskedLazilyInLowerCase(t *testing.T) {
	p := mustParse(t, ParseResource, keyPolicy(
		`{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"ForAnyValue:StringLike":{"KMS:ResourceAliases":"alias/x"}}}`,
		`{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:Dept":"IT","aws:username":"ExampleUser"}}}`))
	rc := &recordingContext{MapContext: MapContext{"kms:encryptioncontext:dept": {"IT"}}}
	if !p.EvaluateResource(req(keyUser, "kms:Encrypt", rc)).Allow {
		t.Fatal("not allowed")
	}
	// kms:ResourceAliases is costly and only the Decrypt statement needs it;
	// aws:username comes from the principal.
	if len(rc.asked) != 1 || rc.asked[0] != "kms:encryptioncontext:dept" {
		t.Errorf("asked %q", rc.asked)
	}
}
