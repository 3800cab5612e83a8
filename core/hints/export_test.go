package hints

// DecodeProviderPresence is the log's decoder of provider presence, for
// the fuzz targets of package hints_test.
var DecodeProviderPresence = decodeProviderPresence
